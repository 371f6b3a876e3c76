//! The plugins a daemon can load (the built-ins and those its builder was given), and the
//! selection by `--load-plugins` and `--path-manager`.

use std::{fmt, sync::Arc};

use mptcpd_plugin::{Plugin, PluginConfig};
use mptcpd_plugin_addr_adv::AddrAdv;
use mptcpd_plugin_health::Health;
use mptcpd_plugin_mesh::Mesh;
use mptcpd_plugin_sspi::Sspi;

use super::PluginError;

/// Makes a plugin from the daemon's settings that concern plugins.
type Factory = Box<dyn Fn(&PluginConfig) -> Arc<dyn Plugin> + Send + Sync>;

/// The plugins a daemon can load, in registration order (the default when priorities tie).
pub struct Registry {
    factories: Vec<Factory>,
}

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registry")
            .field("plugins", &self.factories.len())
            .finish()
    }
}

impl Default for Registry {
    /// The built-in plugins: `addr_adv` (first, so the default when priorities tie), `sspi`,
    /// `mesh`, `health`.
    fn default() -> Self {
        Self::empty()
            .with(AddrAdv::new)
            .with(|_| Sspi::new())
            .with(Mesh::new)
            .with(Health::new)
    }
}

impl Registry {
    /// No plugin at all.
    #[must_use]
    pub fn empty() -> Self {
        Self {
            factories: Vec::new(),
        }
    }

    /// Registers a plugin made from the settings when the daemon starts.
    #[must_use]
    pub fn with<P: Plugin + 'static>(
        mut self,
        make: impl Fn(&PluginConfig) -> P + Send + Sync + 'static,
    ) -> Self {
        self.factories
            .push(Box::new(move |config| Arc::new(make(config))));
        self
    }

    /// Registers a plugin made already.
    #[must_use]
    pub(crate) fn with_plugin(mut self, plugin: Arc<dyn Plugin>) -> Self {
        self.factories.push(Box::new(move |_| Arc::clone(&plugin)));
        self
    }

    /// Makes every registered plugin and picks those `load` names (every one if `None`),
    /// ordered by priority (ties: the order of `load`, else of registration), and the index
    /// of the default one: `path_manager`, else the first.
    pub fn select(
        &self,
        config: &PluginConfig,
        load: Option<&[String]>,
        path_manager: Option<&str>,
    ) -> Result<(Vec<Arc<dyn Plugin>>, usize), PluginError> {
        select(
            self.factories.iter().map(|make| make(config)).collect(),
            load,
            path_manager,
        )
    }
}

fn select(
    mut available: Vec<Arc<dyn Plugin>>,
    load: Option<&[String]>,
    path_manager: Option<&str>,
) -> Result<(Vec<Arc<dyn Plugin>>, usize), PluginError> {
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
    let mut chosen: Vec<Arc<dyn Plugin>> = match load {
        None => available,
        Some([]) => return Err(PluginError::NoPlugin),
        Some(names) => {
            let mut chosen: Vec<Arc<dyn Plugin>> = Vec::new();
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
    use std::sync::Arc;

    use mptcpd_plugin::{BoxFuture, Event, PathManager, Plugin, PluginConfig, done};

    use super::{PluginError, Registry};

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
        fn on_event<'a>(&'a self, _: &'a Event, _: &'a dyn PathManager) -> BoxFuture<'a, ()> {
            done()
        }
    }

    fn three() -> Registry {
        Registry::empty()
            .with(|_| Named("a", 0))
            .with(|_| Named("b", -5))
            .with(|_| Named("c", 0))
    }

    fn select(
        registry: &Registry,
        load: Option<&[String]>,
        path_manager: Option<&str>,
    ) -> Result<(Vec<Arc<dyn Plugin>>, usize), PluginError> {
        registry.select(&PluginConfig::default(), load, path_manager)
    }

    fn names(plugins: &[Arc<dyn Plugin>]) -> Vec<&'static str> {
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
        let (plugins, default) = select(&Registry::default(), None, None).unwrap();
        assert_eq!(names(&plugins), ["addr_adv", "sspi", "mesh", "health"]);
        assert_eq!(plugins[default].name(), "addr_adv");
        let (plugins, default) = select(&Registry::default(), None, Some("sspi")).unwrap();
        assert_eq!(plugins[default].name(), "sspi");
    }

    #[test]
    fn priority_orders_and_picks_the_default() {
        let (plugins, default) = select(&three(), None, None).unwrap();
        assert_eq!(names(&plugins), ["b", "a", "c"]);
        assert_eq!(default, 0);
        let (plugins, default) = select(&three(), Some(&list(&["c", "a", "c"])), None).unwrap();
        assert_eq!(names(&plugins), ["c", "a"], "ties keep the list's order");
        assert_eq!(plugins[default].name(), "c");
        let (plugins, default) = select(&three(), None, Some("c")).unwrap();
        assert_eq!(plugins[default].name(), "c");
    }

    #[test]
    fn unknown_names_are_errors() {
        let err = error(select(&three(), Some(&list(&["a", "zz"])), None));
        assert_eq!(
            err.to_string(),
            "unknown plugin \"zz\" (known plugins: a, b, c)"
        );
        let err = error(select(&three(), None, Some("zz")));
        assert!(matches!(err, PluginError::UnknownPlugin { .. }), "{err}");
        let err = error(select(&three(), Some(&list(&["a"])), Some("b")));
        assert_eq!(
            err.to_string(),
            "path manager \"b\" is not among the loaded plugins"
        );
        assert!(matches!(
            select(&three(), Some(&[]), None),
            Err(PluginError::NoPlugin)
        ));
    }
}
