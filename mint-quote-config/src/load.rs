//! Reading a TOML file into a typed struct, with errors that name the file
//! and the key.

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;

/// A configuration file that could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid TOML, or a key is unknown, missing or of the
    /// wrong type. `toml`'s message names the key and shows the line.
    #[error("{path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What is wrong, with the key.
        message: String,
    },
    /// A number outside its documented range.
    #[error("{path}: {key} = {value} is out of range; allowed {min}..={max}")]
    OutOfRange {
        /// The file.
        path: PathBuf,
        /// The key, as `section.key`.
        key: String,
        /// The value found.
        value: u64,
        /// Smallest allowed value.
        min: u64,
        /// Largest allowed value.
        max: u64,
    },
    /// A value parsed but is not acceptable.
    #[error("{path}: {key}: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// The key, as `section.key`.
        key: String,
        /// What is wrong.
        message: String,
    },
}

impl ConfigError {
    /// An unacceptable value of `key` in `path`.
    pub fn invalid(path: &Path, key: impl Into<String>, message: impl ToString) -> Self {
        ConfigError::Invalid {
            path: path.to_path_buf(),
            key: key.into(),
            message: message.to_string(),
        }
    }
}

/// Parses `text` as the contents of `path` (used in error messages only).
pub fn parse_toml<T: DeserializeOwned>(path: &Path, text: &str) -> Result<T, ConfigError> {
    toml::from_str(text).map_err(|e| ConfigError::Parse {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

/// Reads and parses the TOML file at `path`.
pub fn load_toml<T: DeserializeOwned>(path: &Path) -> Result<T, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse_toml(path, &text)
}
