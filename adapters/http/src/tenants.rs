//! Namespaces per request (`docs/security.md`): every route is also served under
//! `P/ns/{namespace}/…`, by a manager of that namespace, so one server serves many tenants.
//! Managers are made on first use and kept (each has its own group commit, which must never
//! mix namespaces), up to a bound, so that requests naming ever new namespaces cannot grow
//! the server's memory.

use crate::error::HttpError;
use pgqueue_app::Manager;
use std::collections::HashMap;
use std::sync::Mutex;

/// How many namespaces' managers are kept; beyond it, one is made per request (without
/// group commit).
const KEPT: usize = 1_000;

/// The server's manager and those of the namespaces requests named.
pub(crate) struct Tenants {
    base: Manager,
    group_commit: bool,
    kept: Mutex<HashMap<String, Manager>>,
}

impl Tenants {
    /// `base` serves the unprefixed routes.
    pub(crate) fn new(base: Manager, group_commit: bool) -> Self {
        Self {
            base,
            group_commit,
            kept: Mutex::new(HashMap::new()),
        }
    }

    /// The server's own manager (the health checks ask it).
    pub(crate) fn base(&self) -> &Manager {
        &self.base
    }

    /// Splits `ns/{namespace}/…` off the path segments below the prefix.
    pub(crate) fn split(segments: Vec<String>) -> (Option<String>, Vec<String>) {
        match segments.as_slice() {
            [first, ns, ..] if first == "ns" => {
                let ns = ns.clone();
                (Some(ns), segments.into_iter().skip(2).collect())
            }
            _ => (None, segments),
        }
    }

    /// The manager of namespace `name` (400 for an invalid or reserved name).
    pub(crate) fn manager(&self, name: Option<&str>) -> Result<Manager, HttpError> {
        let Some(name) = name else {
            return Ok(self.base.clone());
        };
        let fresh = self.base.with_namespace(name)?;
        if fresh.namespace() == self.base.namespace() {
            return Ok(self.base.clone());
        }
        let key = fresh.namespace().as_str().to_string();
        let mut kept = self.kept.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(m) = kept.get(&key) {
            return Ok(m.clone());
        }
        if kept.len() >= KEPT {
            return Ok(fresh);
        }
        let m = if self.group_commit {
            fresh.with_group_commit()
        } else {
            fresh
        };
        kept.insert(key, m.clone());
        Ok(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segs(s: &[&str]) -> Vec<String> {
        s.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn the_namespace_prefix_is_split_off() {
        assert_eq!(
            Tenants::split(segs(&["ns", "billing", "task", "7"])),
            (Some("billing".into()), segs(&["task", "7"]))
        );
        assert_eq!(Tenants::split(segs(&["task"])), (None, segs(&["task"])));
        assert_eq!(Tenants::split(segs(&["ns"])), (None, segs(&["ns"])));
    }
}
