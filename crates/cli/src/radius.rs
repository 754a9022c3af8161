//! `lastmile serve`'s RADIUS side: the command-line options and starting the node.

use anyhow::{Context, Result};
use lastmile_app::App;
use lastmile_jobs::Runner;
use lastmile_radius::backend::{NodeConfig, RadiusNode};
use lastmile_radius::dynauth::{self, DynAuthConfig};
use lastmile_radius::{CoaClient, ServerConfig};
use std::net::SocketAddr;
use std::str::FromStr;
use tokio::sync::watch;

/// A RADIUS port's address, or `off`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Listen {
    Off,
    On(SocketAddr),
}

impl Listen {
    fn addr(self) -> Option<SocketAddr> {
        match self {
            Listen::Off => None,
            Listen::On(a) => Some(a),
        }
    }
}

impl FromStr for Listen {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if s.eq_ignore_ascii_case("off") {
            return Ok(Listen::Off);
        }
        s.parse()
            .map(Listen::On)
            .map_err(|_| format!("`{s}` is neither an address like 0.0.0.0:1812 nor `off`"))
    }
}

#[derive(clap::Args, Clone, Debug)]
pub struct RadiusArgs {
    /// RADIUS authentication (Access-Request) address, or `off`.
    #[arg(long = "radius-auth", default_value = "0.0.0.0:1812")]
    pub auth: Listen,
    /// RADIUS accounting address, or `off`.
    #[arg(long = "radius-acct", default_value = "0.0.0.0:1813")]
    pub acct: Listen,
    /// Sockets per RADIUS port, bound with SO_REUSEPORT; default one per core.
    #[arg(long = "radius-sockets")]
    pub sockets: Option<usize>,
}

impl RadiusArgs {
    pub fn enabled(&self) -> bool {
        self.auth != Listen::Off || self.acct != Listen::Off
    }
}

/// Starts the RADIUS node, unless both ports are off.
pub async fn start(
    app: &App,
    args: &RadiusArgs,
    stop: watch::Receiver<bool>,
) -> Result<Option<RadiusNode>> {
    if !args.enabled() {
        tracing::info!("RADIUS is off (--radius-auth off --radius-acct off)");
        return Ok(None);
    }
    let defaults = ServerConfig::default();
    let config = NodeConfig {
        server: ServerConfig {
            auth_addr: args.auth.addr(),
            acct_addr: args.acct.addr(),
            sockets_per_port: args.sockets.unwrap_or(defaults.sockets_per_port).max(1),
            ..defaults
        },
        ..NodeConfig::default()
    };
    let node = RadiusNode::start(app.store.clone(), app.secrets.clone(), config, stop)
        .await
        .context("starting RADIUS (turn a port off with --radius-auth off / --radius-acct off)")?;
    let show = |a: Option<SocketAddr>| a.map_or_else(|| "off".to_string(), |a| a.to_string());
    tracing::info!(auth = %show(node.auth_addr), acct = %show(node.acct_addr), "RADIUS listening");
    Ok(Some(node))
}

/// Adds the CoA and Disconnect executors, sending from the address RADIUS listens on when it
/// is a specific one (NASes take CoA only from their RADIUS server).
pub fn register_dynauth(runner: Runner, app: &App, node: &RadiusNode, args: &RadiusArgs) -> Runner {
    let source = args
        .auth
        .addr()
        .or(args.acct.addr())
        .map(|a| a.ip())
        .filter(|ip| !ip.is_unspecified());
    let client = match source {
        Some(ip) => CoaClient::with_source(ip),
        None => CoaClient::new(),
    };
    dynauth::register(
        runner,
        app.store.clone(),
        app.clock.clone(),
        node.directory.clone(),
        client,
        DynAuthConfig::default(),
    )
}
