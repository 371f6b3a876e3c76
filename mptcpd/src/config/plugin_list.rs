//! The plugin list (`--load-plugins`, `load-plugins=`): which plugins to load, by name.

use std::{fmt, str::FromStr};

/// Plugin names in the order given, as the C daemon's comma-separated list.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PluginList(pub Vec<String>);

/// A plugin list that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PluginListError {
    /// No names at all (the C daemon refuses an empty `--load-plugins` too).
    #[error("empty plugin list")]
    Nothing,
    /// Two commas in a row, or a comma at either end (the C daemon skipped those silently).
    #[error("empty plugin name in {0:?}")]
    EmptyName(String),
    /// A name with a character no plugin name has.
    #[error("invalid plugin name {0:?} (letters, digits, '_' and '-' only)")]
    BadName(String),
}

impl FromStr for PluginList {
    type Err = PluginListError;

    fn from_str(list: &str) -> Result<Self, Self::Err> {
        if list.trim().is_empty() {
            return Err(PluginListError::Nothing);
        }
        list.split(',')
            .map(|name| {
                let name = name.trim();
                if name.is_empty() {
                    Err(PluginListError::EmptyName(list.to_owned()))
                } else if !name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
                {
                    Err(PluginListError::BadName(name.to_owned()))
                } else {
                    Ok(name.to_owned())
                }
            })
            .collect::<Result<_, _>>()
            .map(Self)
    }
}

impl fmt::Display for PluginList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::{PluginList, PluginListError};

    #[test]
    fn parses_names_in_order() {
        assert_eq!(
            "sspi, addr_adv".parse(),
            Ok(PluginList(vec!["sspi".to_owned(), "addr_adv".to_owned()]))
        );
        assert_eq!(
            "addr_adv".parse::<PluginList>().unwrap().to_string(),
            "addr_adv"
        );
    }

    #[test]
    fn empty_lists_names_and_odd_characters_are_errors() {
        assert_eq!("".parse::<PluginList>(), Err(PluginListError::Nothing));
        assert_eq!(
            "addr_adv,,sspi".parse::<PluginList>(),
            Err(PluginListError::EmptyName("addr_adv,,sspi".to_owned()))
        );
        assert_eq!(
            "../evil".parse::<PluginList>(),
            Err(PluginListError::BadName("../evil".to_owned()))
        );
    }
}
