//! The tier in each vendor's dialect: which attributes tell a NAS how fast a session may go.
//!
//! - MikroTik: `Mikrotik-Rate-Limit`, `rx/tx [rx-burst/tx-burst rx-threshold/tx-threshold
//!   rx-time/tx-time]` from the router's point of view, so rx is the subscriber's upload and
//!   tx the download (RouterOS RADIUS client manual). Rates in `k` (1,000 bit/s), times in
//!   seconds.
//! - WISPr: `WISPr-Bandwidth-Max-Up` / `-Down`, bit/s.
//! - Cisco (ISG / IOS-XE BNG): two `Cisco-AVPair`s naming policy maps configured on the
//!   router, `ip:sub-qos-policy-in=<plan>-in` and `ip:sub-qos-policy-out=<plan>-out`, the form
//!   Cisco's per-session QoS documentation recommends over `lcp:interface-config`.
//! - Juniper (JunOSe / JunOS BNG, ERX dictionary): `ERX-Qos-Profile-Name` = plan code, and
//!   `ERX-Ingress-Policy-Name` / `ERX-Egress-Policy-Name` = `<plan>-in` / `<plan>-out`.
//! - Huawei: `Huawei-Input-Average-Rate` (from the subscriber) and `-Output-Average-Rate`
//!   (towards them) in bit/s, with the burst rates as `-Peak-Rate`.
//! - Generic: nothing; the NAS applies its own defaults.
//!
//! Policy-based vendors (Cisco, Juniper) need the policies named after the plan codes
//! configured on the router; rate-based ones (MikroTik, WISPr, Huawei) need nothing.

use core::fmt::Write as _;

use lastmile_domain::nas::VendorProfile;
use lastmile_radius_codec::dict::{cisco, huawei, juniper, mikrotik, wispr};

use crate::directory::Tier;
use crate::reply::{InlineText, ReplyAttrs, Value};

/// kbit/s to bit/s for 32-bit attributes; saturates at about 4.29 Gbit/s, the most they carry.
pub fn bits_per_second(kbps: u32) -> u32 {
    kbps.saturating_mul(1000)
}

/// The `Mikrotik-Rate-Limit` string of a tier: `"{up}k/{down}k"`, and with a burst
/// `"{up}k/{down}k {burst-up}k/{burst-down}k {threshold-up}k/{threshold-down}k {t}/{t}"`.
pub fn mikrotik_rate_limit(tier: &Tier) -> InlineText {
    let mut s = InlineText::new();
    // Four pairs of u32 with suffixes stay under 100 octets: the write cannot overflow.
    let _ = write!(s, "{}k/{}k", tier.upload_kbps, tier.download_kbps);
    if let Some(b) = &tier.burst {
        let _ = write!(
            s,
            " {}k/{}k {}k/{}k {}/{}",
            b.upload_kbps,
            b.download_kbps,
            b.threshold_upload_kbps,
            b.threshold_download_kbps,
            b.time_secs,
            b.time_secs
        );
    }
    s
}

/// Appends the attributes carrying `tier` for `vendor` to `out`.
pub fn tier_attributes<'a>(vendor: VendorProfile, tier: &'a Tier, out: &mut ReplyAttrs<'a>) {
    let policy = tier.policy_name.as_str();
    match vendor {
        VendorProfile::Mikrotik => {
            out.push_vendor(
                mikrotik::RATE_LIMIT,
                Value::Inline(mikrotik_rate_limit(tier)),
            );
        }
        VendorProfile::Wispr => {
            out.push_vendor(
                wispr::BANDWIDTH_MAX_UP,
                Value::U32(bits_per_second(tier.upload_kbps)),
            );
            out.push_vendor(
                wispr::BANDWIDTH_MAX_DOWN,
                Value::U32(bits_per_second(tier.download_kbps)),
            );
        }
        VendorProfile::Cisco => {
            // An empty policy name would reference a policy map called "-in".
            if !policy.is_empty() {
                out.push_vendor(
                    cisco::AVPAIR,
                    Value::Concat("ip:sub-qos-policy-in=", policy, "-in"),
                );
                out.push_vendor(
                    cisco::AVPAIR,
                    Value::Concat("ip:sub-qos-policy-out=", policy, "-out"),
                );
            }
        }
        VendorProfile::Juniper => {
            if !policy.is_empty() {
                out.push_vendor(juniper::QOS_PROFILE_NAME, Value::Text(policy));
                out.push_vendor(
                    juniper::INGRESS_POLICY_NAME,
                    Value::Concat("", policy, "-in"),
                );
                out.push_vendor(
                    juniper::EGRESS_POLICY_NAME,
                    Value::Concat("", policy, "-out"),
                );
            }
        }
        VendorProfile::Huawei => {
            out.push_vendor(
                huawei::INPUT_AVERAGE_RATE,
                Value::U32(bits_per_second(tier.upload_kbps)),
            );
            out.push_vendor(
                huawei::OUTPUT_AVERAGE_RATE,
                Value::U32(bits_per_second(tier.download_kbps)),
            );
            if let Some(b) = &tier.burst {
                out.push_vendor(
                    huawei::INPUT_PEAK_RATE,
                    Value::U32(bits_per_second(b.upload_kbps)),
                );
                out.push_vendor(
                    huawei::OUTPUT_PEAK_RATE,
                    Value::U32(bits_per_second(b.download_kbps)),
                );
            }
        }
        VendorProfile::Generic => {}
    }
}

/// What a CoA-Request must carry to move a live session to `tier`, and whether `vendor` can
/// change a rate on a live session at all. When it cannot (`false`: Generic, which has no
/// rate attributes), send a Disconnect-Request instead; the subscriber reconnects and the
/// Access-Accept carries the new tier.
pub fn coa_attributes(vendor: VendorProfile, tier: &Tier) -> (bool, ReplyAttrs<'_>) {
    let mut attrs = ReplyAttrs::new();
    tier_attributes(vendor, tier, &mut attrs);
    (!attrs.is_empty(), attrs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use lastmile_domain::plan::Burst;

    fn tier(burst: bool) -> Tier {
        Tier {
            download_kbps: 20_000,
            upload_kbps: 5_000,
            burst: burst.then_some(Burst {
                download_kbps: 40_000,
                upload_kbps: 10_000,
                threshold_download_kbps: 15_000,
                threshold_upload_kbps: 4_000,
                time_secs: 16,
            }),
            policy_name: "home-20".into(),
        }
    }

    #[test]
    fn mikrotik_rate_limit_is_upload_first() {
        assert_eq!(mikrotik_rate_limit(&tier(false)).as_str(), "5000k/20000k");
        assert_eq!(
            mikrotik_rate_limit(&tier(true)).as_str(),
            "5000k/20000k 10000k/40000k 4000k/15000k 16/16"
        );
        let max = Tier {
            download_kbps: u32::MAX,
            upload_kbps: u32::MAX,
            burst: Some(Burst {
                download_kbps: u32::MAX,
                upload_kbps: u32::MAX,
                threshold_download_kbps: u32::MAX,
                threshold_upload_kbps: u32::MAX,
                time_secs: u32::MAX,
            }),
            policy_name: String::new(),
        };
        let s = mikrotik_rate_limit(&max);
        assert_eq!(s.as_str().split(' ').count(), 4);
    }

    #[test]
    fn every_vendor() {
        let t = tier(true);
        let mut a = ReplyAttrs::new();
        tier_attributes(VendorProfile::Wispr, &t, &mut a);
        assert_eq!(
            a.vendor_text(wispr::BANDWIDTH_MAX_UP).as_deref(),
            Some("5000000")
        );
        assert_eq!(
            a.vendor_text(wispr::BANDWIDTH_MAX_DOWN).as_deref(),
            Some("20000000")
        );

        let mut a = ReplyAttrs::new();
        tier_attributes(VendorProfile::Cisco, &t, &mut a);
        assert_eq!(
            a.vendor_texts(cisco::AVPAIR),
            [
                "ip:sub-qos-policy-in=home-20-in",
                "ip:sub-qos-policy-out=home-20-out"
            ]
        );

        let mut a = ReplyAttrs::new();
        tier_attributes(VendorProfile::Juniper, &t, &mut a);
        assert_eq!(
            a.vendor_text(juniper::QOS_PROFILE_NAME).as_deref(),
            Some("home-20")
        );
        assert_eq!(
            a.vendor_text(juniper::INGRESS_POLICY_NAME).as_deref(),
            Some("home-20-in")
        );
        assert_eq!(
            a.vendor_text(juniper::EGRESS_POLICY_NAME).as_deref(),
            Some("home-20-out")
        );

        let mut a = ReplyAttrs::new();
        tier_attributes(VendorProfile::Huawei, &t, &mut a);
        assert_eq!(
            a.vendor_text(huawei::INPUT_AVERAGE_RATE).as_deref(),
            Some("5000000")
        );
        assert_eq!(
            a.vendor_text(huawei::OUTPUT_AVERAGE_RATE).as_deref(),
            Some("20000000")
        );
        assert_eq!(
            a.vendor_text(huawei::INPUT_PEAK_RATE).as_deref(),
            Some("10000000")
        );
        assert_eq!(
            a.vendor_text(huawei::OUTPUT_PEAK_RATE).as_deref(),
            Some("40000000")
        );
        let plain = tier(false);
        let mut a = ReplyAttrs::new();
        tier_attributes(VendorProfile::Huawei, &plain, &mut a);
        assert_eq!(a.len(), 2);

        let mut a = ReplyAttrs::new();
        tier_attributes(VendorProfile::Generic, &t, &mut a);
        assert!(a.is_empty());
    }

    #[test]
    fn policy_vendors_skip_an_empty_policy() {
        let mut t = tier(false);
        t.policy_name.clear();
        for v in [VendorProfile::Cisco, VendorProfile::Juniper] {
            let mut a = ReplyAttrs::new();
            tier_attributes(v, &t, &mut a);
            assert!(a.is_empty());
        }
    }

    #[test]
    fn coa_falls_back_to_disconnect_where_rates_cannot_change() {
        let t = tier(false);
        let (live, attrs) = coa_attributes(VendorProfile::Mikrotik, &t);
        assert!(live);
        assert_eq!(
            attrs.vendor_text(mikrotik::RATE_LIMIT).as_deref(),
            Some("5000k/20000k")
        );
        let (live, attrs) = coa_attributes(VendorProfile::Generic, &t);
        assert!(!live);
        assert!(attrs.is_empty());
        for v in [
            VendorProfile::Wispr,
            VendorProfile::Cisco,
            VendorProfile::Juniper,
            VendorProfile::Huawei,
        ] {
            assert!(coa_attributes(v, &t).0, "{v:?}");
        }
    }
}
