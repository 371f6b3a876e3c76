//! The built-in plugins and the selection by `--load-plugins` and `--path-manager`.

use mptcpd_plugin::{Plugin, PluginConfig};
use mptcpd_plugin_addr_adv::AddrAdv;
use mptcpd_plugin_sspi::Sspi;

use super::PluginError;

/// Every built-in plugin, in registration order (`addr_adv` first: the default when
/// priorities tie).
#[must_use]
pub fn builtin(config: &PluginConfig) -> Vec<Box<dyn Plugin>> {
    vec![Box::new(AddrAdv::new(config)), Box::new(Sspi::new())]
}

/// Picks the plugins to load from `available`: those `load` names (every one if `None`),
/// ordered by priority (ties: the order of `load`, else of `available`), and the index of
/// the default one: `path_manager`, else the first.
pub fn select(
    mut available: Vec<Box<dyn Plugin>>,
    load: Option<&[String]>,
    path_manager: Option<&str>,
) -> Result<(Vec<Box<dyn Plugin>>, usize), PluginError> {
    let known = available
        .iter()
        .map(|p| p.name())
        .collect::<Vec<_>>()
        .join(", ");
    let unknown = |name: &str| PluginError::UnknownPlugin {
        name: name.to_owned(),
        known: known.clone(),
    };
    if let Some(name) = path_manager
        && !available.iter().any(|p| p.name() == name)
    {
        return Err(unknown(name));
    }
    let mut chosen: Vec<Box<dyn Plugin>> = match load {
        None => available,
        Some([]) => return Err(PluginError::NoPlugin),
        Some(names) => {
            let mut chosen: Vec<Box<dyn Plugin>> = Vec::new();
            for name in names {
                if chosen.iter().any(|p| p.name() == name) {
                    continue;
                }
                let Some(at) = available.iter().position(|p| p.name() == name) else {
                    return Err(unknown(name));
                };
                chosen.push(available.remove(at));
            }
            chosen
        }
    };
    chosen.sort_by_key(|p| p.priority());
    let default = match path_manager {
        None => 0,
        Some(name) => chosen
            .iter()
            .position(|p| p.name() == name)
            .ok_or_else(|| PluginError::DefaultNotLoaded(name.to_owned()))?,
    };
    Ok((chosen, default))
}

#[cfg(test)]
mod tests {
    use mptcpd_plugin::{Plugin, PluginConfig};

    use super::{PluginError, builtin, select};

    struct Named(&'static str, i32);

    impl Plugin for Named {
        fn name(&self) -> &'static str {
            self.0
        }
        fn description(&self) -> &'static str {
            "test"
        }
        fn priority(&self) -> i32 {
            self.1
        }
    }

    fn three() -> Vec<Box<dyn Plugin>> {
        vec![
            Box::new(Named("a", 0)),
            Box::new(Named("b", -5)),
            Box::new(Named("c", 0)),
        ]
    }

    fn names(plugins: &[Box<dyn Plugin>]) -> Vec<&'static str> {
        plugins.iter().map(|p| p.name()).collect()
    }

    fn error<T>(result: Result<T, PluginError>) -> PluginError {
        match result {
            Err(e) => e,
            Ok(_) => panic!("selected"),
        }
    }

    fn list(names: &[&str]) -> Vec<String> {
        names.iter().map(|&n| n.to_owned()).collect()
    }

    #[test]
    fn builtin_default_is_addr_adv() {
        let (plugins, default) = select(builtin(&PluginConfig::default()), None, None).unwrap();
        assert_eq!(names(&plugins), ["addr_adv", "sspi"]);
        assert_eq!(plugins[default].name(), "addr_adv");
        let (plugins, default) =
            select(builtin(&PluginConfig::default()), None, Some("sspi")).unwrap();
        assert_eq!(plugins[default].name(), "sspi");
    }

    #[test]
    fn priority_orders_and_picks_the_default() {
        let (plugins, default) = select(three(), None, None).unwrap();
        assert_eq!(names(&plugins), ["b", "a", "c"]);
        assert_eq!(default, 0);
        let (plugins, default) = select(three(), Some(&list(&["c", "a", "c"])), None).unwrap();
        assert_eq!(names(&plugins), ["c", "a"], "ties keep the list's order");
        assert_eq!(plugins[default].name(), "c");
        let (plugins, default) = select(three(), None, Some("c")).unwrap();
        assert_eq!(plugins[default].name(), "c");
    }

    #[test]
    fn unknown_names_are_errors() {
        let err = error(select(three(), Some(&list(&["a", "zz"])), None));
        assert_eq!(
            err.to_string(),
            "unknown plugin \"zz\" (built-in plugins: a, b, c)"
        );
        let err = error(select(three(), None, Some("zz")));
        assert!(matches!(err, PluginError::UnknownPlugin { .. }), "{err}");
        let err = error(select(three(), Some(&list(&["a"])), Some("b")));
        assert_eq!(
            err.to_string(),
            "path manager \"b\" is not among the loaded plugins"
        );
        assert!(matches!(
            select(three(), Some(&[]), None),
            Err(PluginError::NoPlugin)
        ));
    }
}
