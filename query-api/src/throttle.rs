//! Login throttling: failed logins are counted per account and per source
//! address over a sliding window; past the limit, logins for that account
//! or from that address are refused with `429` and `Retry-After` until the
//! oldest counted failure leaves the window, whether or not the password
//! would be right (so the throttle is no oracle). Counts are kept in this
//! process, bounded in memory.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Mutex;

/// The window failures are counted over.
pub const WINDOW_MS: i64 = 15 * 60_000;
/// Failures for one account within the window before it is throttled.
pub const ACCOUNT_LIMIT: usize = 5;
/// Failures from one address within the window before it is throttled.
pub const ADDRESS_LIMIT: usize = 20;
/// Most keys remembered; past it, keys without a recent failure go first.
const MAX_KEYS: usize = 100_000;

#[derive(Default)]
pub struct LoginThrottle {
    failures: Mutex<HashMap<Key, VecDeque<i64>>>,
}

#[derive(Clone, PartialEq, Eq, Hash)]
enum Key {
    Account(String),
    Address(IpAddr),
}

impl Key {
    /// An account as the store finds it: `" Ada@X "` is `ada@x`.
    fn account(email: &str) -> Key {
        Key::Account(email.trim().to_lowercase())
    }
}

impl LoginThrottle {
    /// Seconds until a login for `account` from `address` may be tried,
    /// or `None` if it may be now.
    pub fn retry_after_s(&self, account: &str, address: IpAddr, now_ms: i64) -> Option<u64> {
        let mut failures = self.lock();
        let limits = [(Key::account(account), ACCOUNT_LIMIT), (Key::Address(address), ADDRESS_LIMIT)];
        limits
            .into_iter()
            .filter_map(|(key, limit)| {
                let times = failures.get_mut(&key)?;
                forget_old(times, now_ms);
                // Free again once enough of the failures left the window.
                let blocking = times.len().checked_sub(limit)?;
                let until = times[blocking] + WINDOW_MS;
                Some(((until - now_ms).max(1) as u64).div_ceil(1000))
            })
            .max()
    }

    /// Counts a failed login.
    pub fn failed(&self, account: &str, address: IpAddr, now_ms: i64) {
        let mut failures = self.lock();
        if failures.len() >= MAX_KEYS {
            failures.retain(|_, times| {
                forget_old(times, now_ms);
                !times.is_empty()
            });
            if failures.len() >= MAX_KEYS {
                failures.clear();
            }
        }
        for key in [Key::account(account), Key::Address(address)] {
            let times = failures.entry(key).or_default();
            forget_old(times, now_ms);
            times.push_back(now_ms);
        }
    }

    /// A successful login clears the account's failures (not the address's).
    pub fn succeeded(&self, account: &str) {
        self.lock().remove(&Key::account(account));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Key, VecDeque<i64>>> {
        self.failures.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn forget_old(times: &mut VecDeque<i64>, now_ms: i64) {
    while times.front().is_some_and(|&t| t <= now_ms - WINDOW_MS) {
        times.pop_front();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOME: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 1));
    const AWAY: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 2));

    #[test]
    fn an_account_is_throttled_after_its_limit_until_the_window_passes() {
        let throttle = LoginThrottle::default();
        for i in 0..ACCOUNT_LIMIT as i64 {
            assert_eq!(throttle.retry_after_s("ada@example.com", HOME, i), None);
            throttle.failed("ada@example.com", HOME, i);
        }
        let wait =
            throttle.retry_after_s(" ADA@example.com ", AWAY, 10).expect("throttled from anywhere, however written");
        assert_eq!(wait, ((WINDOW_MS - 10) as u64).div_ceil(1000));
        assert_eq!(throttle.retry_after_s("bob@example.com", AWAY, 10), None, "other accounts are not");
        assert_eq!(throttle.retry_after_s("ada@example.com", HOME, WINDOW_MS), None, "the first failure aged out");
    }

    #[test]
    fn an_address_is_throttled_across_accounts_and_success_clears_only_the_account() {
        let throttle = LoginThrottle::default();
        for i in 0..ADDRESS_LIMIT {
            throttle.failed(&format!("user{i}@example.com"), AWAY, 0);
        }
        assert!(throttle.retry_after_s("new@example.com", AWAY, 1).is_some());
        assert_eq!(throttle.retry_after_s("new@example.com", HOME, 1), None);
        for _ in 0..ACCOUNT_LIMIT {
            throttle.failed("ada@example.com", HOME, 0);
        }
        throttle.succeeded("ada@example.com");
        assert_eq!(throttle.retry_after_s("ada@example.com", HOME, 1), None);
    }
}
