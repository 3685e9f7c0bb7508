//! Pagination of lists: `offset` from 0, `limit` 100 by default and at most 100.

/// The largest page a list returns, whatever was asked.
pub const MAX_LIMIT: u64 = 100;

/// A window onto an ordered list. `limit = 0` asks only for the total count. Built only
/// through [`Page::new`], so its limit is always capped: no caller can ask a store for a
/// whole table at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    offset: u64,
    limit: u64,
}

impl Page {
    /// A page, with the limit defaulted and capped.
    pub fn new(offset: Option<u64>, limit: Option<u64>) -> Self {
        Self {
            offset: offset.unwrap_or(0),
            limit: limit.unwrap_or(MAX_LIMIT).min(MAX_LIMIT),
        }
    }

    /// Rows to skip.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Rows to return, at most [`MAX_LIMIT`].
    pub fn limit(&self) -> u64 {
        self.limit
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
        assert_eq!(Page::default().limit(), 100);
        assert_eq!(Page::default().offset(), 0);
        assert_eq!(Page::new(Some(5), Some(1000)).limit(), 100);
        assert_eq!(Page::new(Some(5), Some(1000)).offset(), 5);
        assert_eq!(Page::new(None, Some(0)).limit(), 0);
    }
}
