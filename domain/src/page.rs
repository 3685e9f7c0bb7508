//! Pagination of lists: `offset` from 0, `limit` 100 by default and at most 100.

use serde::{Deserialize, Serialize};

/// The largest page a list returns, whatever was asked.
pub const MAX_LIMIT: u64 = 100;

/// A window onto an ordered list. `limit = 0` asks only for the total count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Page {
    /// Rows to skip.
    pub offset: u64,
    /// Rows to return, already capped at [`MAX_LIMIT`].
    pub limit: u64,
}

impl Page {
    /// A page, with the limit capped (callers cannot ask for the whole table at once).
    pub fn new(offset: Option<u64>, limit: Option<u64>) -> Self {
        Self {
            offset: offset.unwrap_or(0),
            limit: limit.unwrap_or(MAX_LIMIT).min(MAX_LIMIT),
        }
    }
}

impl Default for Page {
    fn default() -> Self {
        Self::new(None, None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limit_defaults_to_100_and_is_capped() {
        assert_eq!(
            Page::default(),
            Page {
                offset: 0,
                limit: 100
            }
        );
        assert_eq!(Page::new(Some(5), Some(1000)).limit, 100);
        assert_eq!(Page::new(None, Some(0)).limit, 0);
    }
}
