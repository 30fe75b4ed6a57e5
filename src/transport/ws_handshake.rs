//! The WebSocket opening handshake (RFC 6455 §4.2) for `/` and `/ws`: validates the upgrade request,
//! picks the subprotocol, negotiates `permessage-deflate` (RFC 7692 §7) when the client offers it and
//! compression is on, answers 101 and hands the upgraded connection to [`super::ws_codec::WsConnection`].
//!
//! The builder mirrors axum's `WebSocketUpgrade` (`protocols`, `max_message_size`, `max_frame_size`,
//! `on_upgrade`), which has no compression.

use std::future::Future;

use axum::body::Body;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use sha1::{Digest, Sha1};

use super::ws_codec::{Deflate, WsConnection, WsSettings};

/// The GUID of RFC 6455 §1.3 for `Sec-WebSocket-Accept`.
const ACCEPT_GUID: &[u8] = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// The smallest LZ77 window the compressor can honour: zlib has no 256-byte window, so an offer asking
/// for `server_max_window_bits=8` is declined (RFC 7692 §7.1.2.1 lets the server decline an offer).
const MIN_SERVER_WINDOW_BITS: u8 = 9;

/// What an upgrade request offered, extracted before the handler runs.
pub struct WebSocketUpgrade {
    key: HeaderValue,
    offered_protocols: Vec<String>,
    offered_extensions: HeaderMap,
    on_upgrade: hyper::upgrade::OnUpgrade,
    protocol: Option<&'static str>,
    settings: WsSettings,
    compression: bool,
}

/// Why an upgrade request was refused (the same statuses as axum's `WebSocketUpgrade` rejections).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpgradeRejection {
    MethodNotGet,
    InvalidConnectionHeader,
    InvalidUpgradeHeader,
    InvalidVersion,
    MissingKey,
    NotUpgradable,
}

impl IntoResponse for UpgradeRejection {
    fn into_response(self) -> Response {
        let (status, text) = match self {
            Self::MethodNotGet => (
                StatusCode::METHOD_NOT_ALLOWED,
                "Request method must be `GET`",
            ),
            Self::InvalidConnectionHeader => (
                StatusCode::BAD_REQUEST,
                "Connection header did not include 'upgrade'",
            ),
            Self::InvalidUpgradeHeader => (
                StatusCode::BAD_REQUEST,
                "`Upgrade` header did not include 'websocket'",
            ),
            Self::InvalidVersion => (
                StatusCode::BAD_REQUEST,
                "`Sec-WebSocket-Version` header did not include '13'",
            ),
            Self::MissingKey => (
                StatusCode::BAD_REQUEST,
                "`Sec-WebSocket-Key` header missing",
            ),
            Self::NotUpgradable => (
                StatusCode::UPGRADE_REQUIRED,
                "WebSocket request couldn't be upgraded since no upgrade state was present",
            ),
        };
        (status, text).into_response()
    }
}

fn header_has_token(headers: &HeaderMap, name: header::HeaderName, token: &str) -> bool {
    headers
        .get_all(name)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|item| item.trim().eq_ignore_ascii_case(token))
}

impl<S: Send + Sync> FromRequestParts<S> for WebSocketUpgrade {
    type Rejection = UpgradeRejection;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        if parts.method != Method::GET {
            return Err(UpgradeRejection::MethodNotGet);
        }
        if !header_has_token(&parts.headers, header::CONNECTION, "upgrade") {
            return Err(UpgradeRejection::InvalidConnectionHeader);
        }
        if !header_has_token(&parts.headers, header::UPGRADE, "websocket") {
            return Err(UpgradeRejection::InvalidUpgradeHeader);
        }
        if parts
            .headers
            .get(header::SEC_WEBSOCKET_VERSION)
            .map(HeaderValue::as_bytes)
            != Some(b"13")
        {
            return Err(UpgradeRejection::InvalidVersion);
        }
        let key = parts
            .headers
            .get(header::SEC_WEBSOCKET_KEY)
            .cloned()
            .ok_or(UpgradeRejection::MissingKey)?;
        let on_upgrade = parts
            .extensions
            .remove::<hyper::upgrade::OnUpgrade>()
            .ok_or(UpgradeRejection::NotUpgradable)?;
        let offered_protocols = parts
            .headers
            .get_all(header::SEC_WEBSOCKET_PROTOCOL)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(','))
            .map(|protocol| protocol.trim().to_owned())
            .filter(|protocol| !protocol.is_empty())
            .collect();
        let mut offered_extensions = HeaderMap::new();
        for value in parts.headers.get_all(header::SEC_WEBSOCKET_EXTENSIONS) {
            offered_extensions.append(header::SEC_WEBSOCKET_EXTENSIONS, value.clone());
        }
        Ok(Self {
            key,
            offered_protocols,
            offered_extensions,
            on_upgrade,
            protocol: None,
            settings: WsSettings::default(),
            compression: true,
        })
    }
}

impl WebSocketUpgrade {
    /// The subprotocols the server speaks; the first one the client offered (in the client's order) is
    /// selected, else none is named in the answer.
    pub fn protocols<const N: usize>(mut self, protocols: [&'static str; N]) -> Self {
        self.protocol = self.offered_protocols.iter().find_map(|offered| {
            protocols
                .iter()
                .copied()
                .find(|supported| *supported == offered.as_str())
        });
        self
    }

    /// Largest message, bytes, after decompression; a bigger one fails the read with
    /// [`super::ws_codec::WsError::TooLarge`].
    pub fn max_message_size(mut self, bytes: usize) -> Self {
        self.settings.max_message_bytes = bytes;
        self
    }

    /// Largest frame payload on the wire, bytes.
    pub fn max_frame_size(mut self, bytes: usize) -> Self {
        self.settings.max_frame_bytes = bytes;
        self
    }

    /// Whether `permessage-deflate` may be negotiated (`EHR_MCP_COMPRESSION`).
    pub fn compression(mut self, enabled: bool) -> Self {
        self.compression = enabled;
        self
    }

    /// Answers 101 and runs `callback` on the connection once the upgrade completes.
    pub fn on_upgrade<C, F>(self, callback: C) -> Response
    where
        C: FnOnce(WsConnection) -> F + Send + 'static,
        F: Future<Output = ()> + Send + 'static,
    {
        let deflate = if self.compression {
            negotiate_deflate(&self.offered_extensions)
        } else {
            None
        };
        let mut response = Response::new(Body::empty());
        *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
        let headers = response.headers_mut();
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        if let Ok(accept) = HeaderValue::from_str(&accept_key(self.key.as_bytes())) {
            headers.insert(header::SEC_WEBSOCKET_ACCEPT, accept);
        }
        if let Some(protocol) = self.protocol {
            headers.insert(
                header::SEC_WEBSOCKET_PROTOCOL,
                HeaderValue::from_static(protocol),
            );
        }
        if let Some(deflate) = &deflate {
            if let Ok(value) = HeaderValue::from_str(&deflate.response_header()) {
                headers.insert(header::SEC_WEBSOCKET_EXTENSIONS, value);
            }
        }
        let mut settings = self.settings;
        settings.deflate = deflate;
        let on_upgrade = self.on_upgrade;
        tokio::spawn(async move {
            let upgraded = match on_upgrade.await {
                Ok(upgraded) => upgraded,
                Err(error) => {
                    tracing::debug!(%error, "websocket upgrade did not complete");
                    return;
                }
            };
            let io = hyper_util::rt::TokioIo::new(upgraded);
            callback(WsConnection::new(io, settings)).await;
        });
        response
    }
}

/// `Sec-WebSocket-Accept` for a `Sec-WebSocket-Key`.
pub fn accept_key(key: &[u8]) -> String {
    let mut sha1 = Sha1::new();
    sha1.update(key);
    sha1.update(ACCEPT_GUID);
    base64::engine::general_purpose::STANDARD.encode(sha1.finalize())
}

/// The first acceptable `permessage-deflate` offer of the `Sec-WebSocket-Extensions` headers, as the
/// parameters the connection runs with (RFC 7692 §5, §7.1). An offer with an unknown or repeated
/// parameter, or a value out of range, is declined and the next one considered; `None` when no offer is
/// acceptable (the connection then runs uncompressed and the 101 names no extension).
pub fn negotiate_deflate(headers: &HeaderMap) -> Option<Deflate> {
    headers
        .get_all(header::SEC_WEBSOCKET_EXTENSIONS)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(split_offers)
        .find_map(|offer| accept_offer(&offer))
}

/// Splits a header value into extension offers at commas outside quoted strings.
fn split_offers(value: &str) -> Vec<String> {
    let mut offers = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    for character in value.chars() {
        match character {
            '"' => {
                quoted = !quoted;
                current.push(character);
            }
            ',' if !quoted => offers.push(std::mem::take(&mut current)),
            _ => current.push(character),
        }
    }
    offers.push(current);
    offers
}

/// A window-bits value: a decimal integer 8–15 without leading zeros, optionally quoted (RFC 7692 §7.1.2).
fn window_bits(value: &str) -> Option<u8> {
    let value = value.trim();
    let value = value
        .strip_prefix('"')
        .and_then(|inner| inner.strip_suffix('"'))
        .unwrap_or(value);
    if value.is_empty() || value.starts_with('0') || !value.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let bits: u8 = value.parse().ok()?;
    (8..=15).contains(&bits).then_some(bits)
}

fn accept_offer(offer: &str) -> Option<Deflate> {
    let mut parts = offer.split(';');
    if !parts
        .next()?
        .trim()
        .eq_ignore_ascii_case("permessage-deflate")
    {
        return None;
    }
    let mut deflate = Deflate::default();
    let mut seen: Vec<String> = Vec::new();
    for parameter in parts {
        let (name, value) = match parameter.split_once('=') {
            Some((name, value)) => (name.trim(), Some(value.trim())),
            None => (parameter.trim(), None),
        };
        let name = name.to_ascii_lowercase();
        if seen.contains(&name) {
            return None;
        }
        match (name.as_str(), value) {
            ("server_no_context_takeover", None) => deflate.server_no_context_takeover = true,
            ("client_no_context_takeover", None) => deflate.client_no_context_takeover = true,
            ("server_max_window_bits", Some(value)) => {
                let bits = window_bits(value)?;
                if bits < MIN_SERVER_WINDOW_BITS {
                    return None;
                }
                deflate.server_max_window_bits = Some(bits);
            }
            // The client supports the parameter in the answer (and may hint its window); the server
            // inflates with the full 32 KiB window, so every client window decodes and the answer
            // leaves the client's window to the client.
            ("client_max_window_bits", None) => {}
            ("client_max_window_bits", Some(value)) => {
                window_bits(value)?;
            }
            _ => return None,
        }
        seen.push(name);
    }
    Some(deflate)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn offer(value: &str) -> Option<String> {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::SEC_WEBSOCKET_EXTENSIONS,
            HeaderValue::from_str(value).unwrap(),
        );
        negotiate_deflate(&headers).map(|deflate| deflate.response_header())
    }

    #[test]
    fn accept_key_matches_the_rfc_example() {
        assert_eq!(
            accept_key(b"dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    #[test]
    fn offers_are_answered_per_rfc_7692() {
        assert_eq!(offer("permessage-deflate").unwrap(), "permessage-deflate");
        assert_eq!(
            offer("permessage-deflate; client_max_window_bits").unwrap(),
            "permessage-deflate"
        );
        assert_eq!(
            offer("permessage-deflate; server_max_window_bits=10; client_no_context_takeover")
                .unwrap(),
            "permessage-deflate; server_max_window_bits=10; client_no_context_takeover"
        );
        assert_eq!(
            offer("permessage-deflate; server_no_context_takeover").unwrap(),
            "permessage-deflate; server_no_context_takeover"
        );
        assert_eq!(
            offer("permessage-deflate; server_max_window_bits=\"12\"").unwrap(),
            "permessage-deflate; server_max_window_bits=12"
        );
    }

    #[test]
    fn unacceptable_offers_are_declined_and_the_next_considered() {
        assert_eq!(offer("x-webkit-deflate-frame"), None);
        assert_eq!(offer("permessage-deflate; unknown_parameter"), None);
        assert_eq!(offer("permessage-deflate; server_max_window_bits"), None);
        assert_eq!(offer("permessage-deflate; server_max_window_bits=16"), None);
        assert_eq!(
            offer("permessage-deflate; server_max_window_bits=010"),
            None
        );
        assert_eq!(offer("permessage-deflate; client_max_window_bits=7"), None);
        assert_eq!(
            offer("permessage-deflate; server_no_context_takeover; server_no_context_takeover"),
            None
        );
        assert_eq!(
            offer("permessage-deflate; server_no_context_takeover=1"),
            None
        );
        assert_eq!(
            offer("permessage-deflate; server_max_window_bits=8, permessage-deflate").unwrap(),
            "permessage-deflate"
        );
        assert_eq!(
            offer("permessage-deflate; foo=1, permessage-deflate; server_max_window_bits=11")
                .unwrap(),
            "permessage-deflate; server_max_window_bits=11"
        );
    }
}
