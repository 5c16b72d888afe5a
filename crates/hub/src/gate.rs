//! The waiting room before authentication: connections and Engine.IO sessions that have not
//! yet shown a token cost memory and a task each, and anyone can open them. The gate caps how
//! many may wait at once on this node, in all and per source address; past a cap the
//! transport refuses with 503 and the client retries later.
//!
//! The gate also knows which peers are trusted proxies ([`TrustedProxies`]): every transport
//! asks it who a newcomer is, so the per-address cap, the logs and the connection's
//! `remote_addr` all name the client behind a load balancer rather than the balancer.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, RwLock};

use crate::proxies::TrustedProxies;

/// How many unauthenticated connections may wait on one node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GateLimits {
    /// In all.
    pub total: usize,
    /// From one source address.
    pub per_address: usize,
}

impl Default for GateLimits {
    /// 10,000 in all (a few KiB each) and 1,000 from one address, generous enough for a
    /// reconnect storm through one load balancer.
    fn default() -> Self {
        Self { total: 10_000, per_address: 1_000 }
    }
}

/// Counts what waits, and tells who is at the door.
#[derive(Debug, Default)]
pub struct Gate {
    waiting: Mutex<Waiting>,
    /// The peers whose forwarding headers name the client.
    proxies: RwLock<Arc<TrustedProxies>>,
}

#[derive(Debug, Default)]
struct Waiting {
    limits: GateLimits,
    total: usize,
    by_address: HashMap<IpAddr, usize>,
}

/// Which cap refused a newcomer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum GateFull {
    /// The node's cap.
    #[error("too many connections are waiting to authenticate on this node; retry shortly")]
    Total,
    /// The source address's cap.
    #[error("too many connections from this address are waiting to authenticate; retry shortly")]
    Address,
}

/// One place in the waiting room, given back when dropped (authenticated, refused or gone).
#[derive(Debug)]
pub struct Waiter {
    gate: Arc<Gate>,
    address: IpAddr,
}

impl Gate {
    /// A gate with these caps.
    pub fn new(limits: GateLimits) -> Self {
        Self { waiting: Mutex::new(Waiting { limits, ..Waiting::default() }), proxies: RwLock::default() }
    }

    /// Sets the trusted proxies; connections that already came in keep their addresses.
    pub fn set_trusted_proxies(&self, proxies: TrustedProxies) {
        *self.proxies.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(proxies);
    }

    /// The trusted proxies (none unless set): ask them for a request's client
    /// ([`TrustedProxies::client`]).
    pub fn trusted_proxies(&self) -> Arc<TrustedProxies> {
        self.proxies.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Changes the caps; those already waiting keep their places.
    pub fn set_limits(&self, limits: GateLimits) {
        self.waiting().limits = limits;
    }

    fn waiting(&self) -> std::sync::MutexGuard<'_, Waiting> {
        self.waiting.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes a place for a newcomer from `address`.
    pub fn enter(self: &Arc<Self>, address: IpAddr) -> Result<Waiter, GateFull> {
        let address = counted_as(address);
        let mut waiting = self.waiting();
        let limits = waiting.limits;
        if waiting.total >= limits.total {
            return Err(GateFull::Total);
        }
        let from_address = waiting.by_address.entry(address).or_default();
        if *from_address >= limits.per_address {
            return Err(GateFull::Address);
        }
        *from_address += 1;
        waiting.total += 1;
        Ok(Waiter { gate: self.clone(), address })
    }

    /// How many wait now.
    pub fn len(&self) -> usize {
        self.waiting().total
    }

    /// Whether none waits.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The address a newcomer counts against: an IPv6 address by its /64 (one host commonly
/// holds a whole /64), and an IPv4-mapped one as the IPv4 address it is.
fn counted_as(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6((u128::from(v6) & !u128::from(u64::MAX)).into()),
        },
        v4 => v4,
    }
}

impl Drop for Waiter {
    fn drop(&mut self) {
        let mut waiting = self.gate.waiting();
        waiting.total -= 1;
        if let Some(n) = waiting.by_address.get_mut(&self.address) {
            *n -= 1;
            if *n == 0 {
                waiting.by_address.remove(&self.address);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_in_all_and_per_address_and_frees_places_on_drop() {
        let gate = Arc::new(Gate::new(GateLimits { total: 3, per_address: 2 }));
        let (a, b): (IpAddr, IpAddr) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        let first = gate.enter(a).unwrap();
        let _second = gate.enter(a).unwrap();
        assert_eq!(gate.enter(a).unwrap_err(), GateFull::Address);
        let _third = gate.enter(b).unwrap();
        assert_eq!(gate.enter(b).unwrap_err(), GateFull::Total);
        drop(first);
        assert_eq!(gate.len(), 2);
        assert!(gate.enter(a).is_ok(), "a place came free");
        gate.set_limits(GateLimits { total: 100, per_address: 1 });
        assert_eq!(gate.enter(b).unwrap_err(), GateFull::Address, "new caps apply at once");
    }

    #[test]
    fn an_ipv6_host_counts_by_its_64_and_a_mapped_address_as_ipv4() {
        let gate = Arc::new(Gate::new(GateLimits { total: 10, per_address: 1 }));
        let _one = gate.enter("2001:db8:1:2::1".parse().unwrap()).unwrap();
        assert_eq!(gate.enter("2001:db8:1:2:ffff::9".parse().unwrap()).unwrap_err(), GateFull::Address);
        assert!(gate.enter("2001:db8:1:3::1".parse().unwrap()).is_ok(), "another /64");
        let _v4 = gate.enter("192.0.2.1".parse().unwrap()).unwrap();
        assert_eq!(gate.enter("::ffff:192.0.2.1".parse().unwrap()).unwrap_err(), GateFull::Address);
    }
}
