//! The C plugin's limit arithmetic (`update_limits`).

use mptcpd_plugin::{EndpointFlags, Limits};

/// Fewest subflows the plugin asks for.
const MIN_SUBFLOWS: u32 = 2;
/// The kernel's maximum.
const MAX_SUBFLOWS: u32 = 8;

/// Counts endpoints (plus 2) and says which limits to send.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LimitCounter {
    subflows: u32,
    add_addr_accepted: u32,
    follow_subflows: bool,
}

impl LimitCounter {
    pub(crate) const fn new(flags: EndpointFlags) -> Self {
        Self {
            subflows: 0,
            add_addr_accepted: 0,
            follow_subflows: flags.contains(EndpointFlags::SUBFLOW),
        }
    }

    /// Moves the counter; the limits to send while it is within 2..=8.
    pub(crate) fn update(&mut self, delta: i32) -> Option<Limits> {
        self.subflows = self.subflows.saturating_add_signed(delta);
        if !(MIN_SUBFLOWS..=MAX_SUBFLOWS).contains(&self.subflows) {
            return None;
        }
        if self.follow_subflows {
            self.add_addr_accepted = self.subflows;
        }
        Some(Limits {
            add_addr_accepted: self.add_addr_accepted,
            subflows: self.subflows,
        })
    }
}
