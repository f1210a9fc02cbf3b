//! The documented range of every numeric setting, and the one check of it.
//!
//! Each section declares its numeric keys once, as a table of [`Range`]s;
//! the loaders check every value against it, and a test checks that
//! `docs/operations.md` states the same ranges. A value outside its range
//! is refused with the file, the key, the value and the range, so that no
//! number a file holds can reach code that would panic or misbehave on it.

use std::path::Path;

use crate::load::ConfigError;

/// The allowed values of one numeric setting, both ends included.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    /// The key, as `section.key`.
    pub key: &'static str,
    /// Smallest allowed value.
    pub min: u64,
    /// Largest allowed value.
    pub max: u64,
}

impl Range {
    /// The range of `key`.
    pub const fn new(key: &'static str, min: u64, max: u64) -> Self {
        Range { key, min, max }
    }

    /// Refuses `value` if it is outside the range.
    pub fn check(&self, path: &Path, value: u64) -> Result<(), ConfigError> {
        if (self.min..=self.max).contains(&value) {
            return Ok(());
        }
        Err(ConfigError::OutOfRange {
            path: path.to_path_buf(),
            key: self.key.to_owned(),
            value,
            min: self.min,
            max: self.max,
        })
    }
}

/// Checks every `(range, value)` pair, refusing the first value out of its
/// range.
pub fn check_ranges(path: &Path, values: &[(Range, u64)]) -> Result<(), ConfigError> {
    values
        .iter()
        .try_for_each(|(range, value)| range.check(path, *value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_error_names_file_key_value_and_range() {
        let range = Range::new("listener.max_connections", 1, 10_000);
        assert!(range.check(Path::new("mint.toml"), 1).is_ok());
        assert!(range.check(Path::new("mint.toml"), 10_000).is_ok());
        let err = range
            .check(Path::new("mint.toml"), 10_001)
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "mint.toml: listener.max_connections = 10001 is out of range; allowed 1..=10000"
        );
        assert!(range.check(Path::new("mint.toml"), 0).is_err());
    }
}
