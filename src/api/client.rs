//! The client address of a request: the peer's, or behind trusted proxies the one their
//! forwarding header names (`client_address`, `docs/security.md`).

use std::net::IpAddr;

use poem::Request;

use crate::client_address::TrustedProxies;

/// The client of `req`; `None` for a peer without an IP address (not on a TCP socket).
pub fn address(req: &Request, proxies: &TrustedProxies) -> Option<IpAddr> {
    let peer = req.remote_addr().as_socket_addr()?.ip();
    let values = req
        .headers()
        .get_all(proxies.header().name())
        .iter()
        .filter_map(|value| value.to_str().ok());
    Some(proxies.client(peer, values))
}
