//! Host names resolved by the system's resolver (getaddrinfo, as reqwest's default
//! resolver does), with the failure typed: [`Unresolved`] in an error's chain is a
//! name that does not resolve, which no retry cures within seconds, so the transport
//! gives up at once naming the host instead of backing off for 6.5 s.

use std::net::SocketAddr;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// The system resolver, its failures as [`Unresolved`].
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct SystemResolver;

/// A host name the resolver could not turn into an address.
#[derive(Debug, thiserror::Error)]
#[error("cannot resolve the host name {host}: {source}")]
pub(crate) struct Unresolved {
    /// The host.
    pub host: String,
    /// The resolver's answer.
    source: std::io::Error,
}

impl Resolve for SystemResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_string();
        let name_text = host.clone();
        Box::pin(async move {
            // Port 0: the connector puts the URL's port on each address.
            let looked_up = tokio::net::lookup_host((host.as_str(), 0)).await;
            match looked_up {
                Ok(addresses) => {
                    let addresses: Vec<SocketAddr> = addresses.collect();
                    Ok(Box::new(addresses.into_iter()) as Addrs)
                }
                Err(source) => Err(Box::new(Unresolved {
                    host: name_text,
                    source,
                }) as _),
            }
        })
    }
}

/// The [`Unresolved`] in `error`'s chain, if a host name did not resolve.
pub(crate) fn unresolved<'a>(
    error: &'a (dyn std::error::Error + 'static),
) -> Option<&'a Unresolved> {
    let mut current = Some(error);
    while let Some(cause) = current {
        if let Some(found) = cause.downcast_ref::<Unresolved>() {
            return Some(found);
        }
        current = cause.source();
    }
    None
}
