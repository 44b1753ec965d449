//! Which headers cross the proxy. Everything end-to-end passes unchanged
//! (`anthropic-version`, `anthropic-beta`, `x-stainless-*`, …); hop-by-hop headers,
//! and the client's credentials when the target is not theirs, do not.

use http::header::{self, HeaderMap, HeaderName};

/// Headers that describe one connection, not the message (RFC 9110 §7.6.1), plus the ones
/// the HTTP client recomputes.
const HOP_BY_HOP: [HeaderName; 9] = [
    header::CONNECTION,
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
    header::HOST,
    header::CONTENT_LENGTH,
];

const KEEP_ALIVE: &str = "keep-alive";

/// Headers the client sent that carry its credentials.
pub const CREDENTIAL_HEADERS: [&str; 2] = ["x-api-key", "authorization"];

/// The named headers that are present, as text, in the order of `names`.
pub fn pick(headers: &HeaderMap, names: &[&str]) -> Vec<(String, String)> {
    names
        .iter()
        .filter_map(|name| {
            let value = headers.get(*name)?.to_str().ok()?;
            Some(((*name).to_owned(), value.to_owned()))
        })
        .collect()
}

/// The client's credential headers that are present, as text.
pub fn credentials_of(headers: &HeaderMap) -> Vec<(String, String)> {
    pick(headers, &CREDENTIAL_HEADERS)
}

/// Our own control headers (`x-pai-*`): consumed here, never sent upstream.
pub fn is_pai_header(name: &HeaderName) -> bool {
    name.as_str().starts_with("x-pai-")
}

fn named_in_connection(headers: &HeaderMap, name: &HeaderName) -> bool {
    headers.get_all(header::CONNECTION).iter().any(|value| {
        value
            .to_str()
            .unwrap_or("")
            .split(',')
            .any(|token| token.trim().eq_ignore_ascii_case(name.as_str()))
    })
}

fn is_hop_by_hop(headers: &HeaderMap, name: &HeaderName) -> bool {
    HOP_BY_HOP.contains(name) || name.as_str() == KEEP_ALIVE || named_in_connection(headers, name)
}

/// The client's request headers as they go upstream. With `pass_credentials` false the
/// client's `x-api-key` / `authorization` are removed (the provider gets its own or none).
pub fn upstream_request(client: &HeaderMap, pass_credentials: bool) -> HeaderMap {
    let mut out = HeaderMap::with_capacity(client.len());
    for (name, value) in client {
        if is_hop_by_hop(client, name) || is_pai_header(name) {
            continue;
        }
        if CREDENTIAL_HEADERS.contains(&name.as_str()) {
            if !pass_credentials {
                continue;
            }
            let mut value = value.clone();
            value.set_sensitive(true);
            out.append(name.clone(), value);
            continue;
        }
        out.append(name.clone(), value.clone());
    }
    out
}

/// The upstream's response headers as they go back to the client.
pub fn downstream_response(upstream: &HeaderMap) -> HeaderMap {
    let mut out = HeaderMap::with_capacity(upstream.len());
    for (name, value) in upstream {
        if is_hop_by_hop(upstream, name) && name != header::CONTENT_LENGTH {
            continue;
        }
        out.append(name.clone(), value.clone());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn map(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn end_to_end_headers_pass_and_hop_by_hop_do_not() {
        let client = map(&[
            ("anthropic-version", "2023-06-01"),
            (
                "anthropic-beta",
                "oauth-2025-04-20,interleaved-thinking-2025-05-14",
            ),
            ("x-api-key", "sk-ant-test"),
            ("connection", "keep-alive, x-drop-me"),
            ("x-drop-me", "1"),
            ("keep-alive", "timeout=5"),
            ("host", "127.0.0.1:8766"),
            ("content-length", "12"),
            ("x-pai-complexity", "simple"),
            ("x-stainless-lang", "js"),
        ]);
        let out = upstream_request(&client, true);
        let names: Vec<&str> = out.keys().map(|k| k.as_str()).collect();
        assert_eq!(
            names,
            [
                "anthropic-version",
                "anthropic-beta",
                "x-api-key",
                "x-stainless-lang"
            ]
        );
        assert!(out["x-api-key"].is_sensitive());
    }

    #[test]
    fn credentials_are_dropped_for_other_providers() {
        let client = map(&[
            ("x-api-key", "k"),
            ("authorization", "Bearer t"),
            ("accept", "*/*"),
        ]);
        let out = upstream_request(&client, false);
        assert_eq!(out.len(), 1);
        assert!(out.contains_key("accept"));
    }

    #[test]
    fn response_keeps_content_length_and_rate_limit_headers() {
        let upstream = map(&[
            ("content-length", "5"),
            ("transfer-encoding", "chunked"),
            ("anthropic-ratelimit-unified-5h-utilization", "0.42"),
            ("request-id", "req_1"),
        ]);
        let out = downstream_response(&upstream);
        assert_eq!(out.len(), 3);
        assert!(!out.contains_key("transfer-encoding"));
    }
}
