//! Keyset pagination: `limit` (1–500, default 50) and an opaque `cursor` (the last id seen).

use crate::error::ApiError;
use base64::Engine;
use lastmile_api_types::Page as PageBody;
use lastmile_store::Page;
use uuid::Uuid;

pub const DEFAULT_LIMIT: u32 = 50;
pub const MAX_LIMIT: u32 = 500;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// The store page for a request: one row more than asked, to know whether more follow.
pub fn page(limit: Option<u32>, cursor: Option<&str>) -> Result<(Page, u32), ApiError> {
    let limit = limit.unwrap_or(DEFAULT_LIMIT);
    if limit == 0 || limit > MAX_LIMIT {
        return Err(ApiError::field(
            "limit",
            format!("must be between 1 and {MAX_LIMIT}"),
        ));
    }
    let after = match cursor {
        None | Some("") => None,
        Some(c) => {
            let bytes = B64
                .decode(c)
                .map_err(|_| ApiError::field("cursor", "not a cursor from this API"))?;
            Some(
                Uuid::from_slice(&bytes)
                    .map_err(|_| ApiError::field("cursor", "not a cursor from this API"))?,
            )
        }
    };
    Ok((
        Page {
            after,
            limit: limit + 1,
        },
        limit,
    ))
}

/// The response page: at most `limit` items and the cursor of the next page, if any.
pub fn body<T, R>(
    mut items: Vec<T>,
    limit: u32,
    id: impl Fn(&T) -> Uuid,
    map: impl Fn(T) -> R,
) -> PageBody<R> {
    let more = items.len() > limit as usize;
    items.truncate(limit as usize);
    let next_cursor = if more {
        items.last().map(|t| B64.encode(id(t).as_bytes()))
    } else {
        None
    };
    PageBody {
        items: items.into_iter().map(map).collect(),
        next_cursor,
    }
}
