//! What turns the settings table (`settings.rs`) into code: the `settings_table!` macro, which
//! makes of each declaration its command-line option, its file key, its [`Config`] field, its
//! place in the merge (command line, then file, then default) and a [`Setting`] row; and the
//! row itself, through which the log line, the reload plan and the tests treat every setting
//! alike.

use std::{borrow::Cow, ffi::OsString};

use super::Config;

/// One setting, as the table declares it.
#[derive(Debug)]
pub struct Setting {
    /// The file's section that holds the key (`core`, `health`).
    pub section: &'static str,
    /// The key in its section.
    pub key: &'static str,
    /// The long option (`--OPTION`): the key for `[core]`, `SECTION-KEY` for the others;
    /// also the setting's name in the log line, the reload messages and D-Bus.
    pub option: &'static str,
    /// For an option given without a value (`-d`): the value it stands for.
    pub switch: Option<&'static str>,
    /// A valid value other than the default, as the file writes it.
    pub example: &'static str,
    /// How no value (unset, or empty) reads in the log line.
    pub(super) blank: &'static str,
    pub(super) text: fn(&Config) -> Option<OsString>,
    pub(super) reload: fn(&Config, &mut Config) -> Option<&'static str>,
}

impl Setting {
    /// The value in `config` as the file and the command line write it; `None`: unset.
    #[must_use]
    pub fn text(&self, config: &Config) -> Option<OsString> {
        (self.text)(config)
    }

    /// The value in `config` as the log line shows it.
    pub(super) fn shown(&self, config: &Config) -> Cow<'static, str> {
        match self.text(config) {
            Some(text) if !text.is_empty() => Cow::Owned(text.to_string_lossy().into_owned()),
            _ => Cow::Borrowed(self.blank),
        }
    }

    /// On SIGHUP: leaves in `new` the value in force, which is the running one from `current`
    /// where a new value waits for a restart; names what waits, if anything.
    pub(crate) fn reload(&self, current: &Config, new: &mut Config) -> Option<&'static str> {
        (self.reload)(current, new)
    }
}

/// What a SIGHUP does with a setting's new value.
pub(super) enum Reload<T> {
    /// It applies at once.
    AtOnce,
    /// It waits for the next start; the running value stays.
    Restart,
    /// `in_force(current, new)` is the value in force; what differs from `new` waits for the
    /// next start, under the name given.
    Partly(&'static str, fn(T, T) -> T),
}

impl<T: Clone + PartialEq> Reload<T> {
    /// [`Setting::reload`] for one value; `key` names it when all of it waits.
    pub(super) fn apply(
        &self,
        key: &'static str,
        current: &T,
        new: &mut T,
    ) -> Option<&'static str> {
        let (in_force, name) = match *self {
            Self::AtOnce => return None,
            Self::Restart => (current.clone(), key),
            Self::Partly(name, in_force) => (in_force(current.clone(), new.clone()), name),
        };
        let waits = in_force != *new;
        *new = in_force;
        waits.then_some(name)
    }
}

/// Declares the command line and the settings: `Args` (clap), `Config`, `FileSettings` (what
/// the file says, and its key dispatch), `merge`, the file's `SECTION` and `SETTINGS` (a
/// [`Setting`] per setting). See `settings.rs` for the form.
macro_rules! settings_table {
    // Sorts the entries, in command-line order: every one is an option of `Args`; those with
    // a `=> { ... }` body are settings too (optional there), the others plain clap fields.
    (@sort $header:tt [$($options:tt)*] [$($settings:tt)*]
        $(#[doc = $doc:literal])*
        #[arg($($arg:tt)*)]
        $field:ident: $value:ty => {
            key: $key:literal,
            $(section: $section:literal,)?
            $(switch: $switch:literal,)?
            example: $example:literal,
            $($body:tt)*
        };
        $($rest:tt)*
    ) => {
        settings_table!(@sort $header
            [$($options)*
                $(#[doc = $doc])*
                #[arg(long = settings_table!(@option_name $key $(, $section)?)
                    $(, num_args = 0, default_missing_value = $switch)?)]
                #[arg($($arg)*)]
                pub $field: Option<$value>,
            ]
            [$($settings)* {
                $(#[doc = $doc])*
                $field: $value,
                key: $key,
                section: [$($section)?],
                switch: [$($switch)?],
                example: $example,
                $($body)*
            }]
            $($rest)*
        );
    };
    (@sort $header:tt [$($options:tt)*] $settings:tt
        $(#[doc = $doc:literal])*
        #[arg($($arg:tt)*)]
        $field:ident: $value:ty;
        $($rest:tt)*
    ) => {
        settings_table!(@sort $header
            [$($options)* $(#[doc = $doc])* #[arg($($arg)*)] pub $field: $value,]
            $settings
            $($rest)*
        );
    };
    // Everything sorted: the code.
    (@sort
        [
            $(#[$args_meta:meta])*
            pub struct $args:ident;
            $(#[$config_meta:meta])*
            pub struct $config:ident {
                $($(#[doc = $extra_doc:literal])* pub $extra:ident: $extra_ty:ty,)*
            }
            section $main:literal;
        ]
        [$($options:tt)*]
        [$({
            $(#[doc = $doc:literal])*
            $field:ident: $value:ty,
            key: $key:literal,
            section: [$($section:literal)?],
            switch: [$($switch:literal)?],
            example: $example:literal,
            $(parse: $parse:expr,)?
            $(text: $text:ident,)?
            $(default: $default:expr,)?
            $(unset: $unset:literal,)?
            $(empty: $empty:literal,)?
            reload: $reload:ident $(($($reload_arg:tt)*))?,
        })*]
    ) => {
        $(#[$args_meta])*
        pub struct $args {
            $($options)*
        }

        $(#[$config_meta])*
        pub struct $config {
            $(
                $(#[doc = $doc])*
                pub $field: settings_table!(@config_type $value $(, $unset)?),
            )*
            $($(#[doc = $extra_doc])* pub $extra: $extra_ty,)*
        }

        /// The file's main section (the C daemon's only one); sections no setting names
        /// are ignored, as by the C daemon.
        pub const SECTION: &str = $main;

        /// What the file says; `None` where it says nothing.
        #[derive(Debug, Clone, Default, PartialEq, Eq)]
        pub(crate) struct FileSettings {
            $($(#[doc = $doc])* pub(crate) $field: Option<$value>,)*
        }

        impl FileSettings {
            /// Sets `key` of `section` from `value` (trimmed). A key given twice takes its
            /// last value.
            pub(super) fn set(
                &mut self,
                section: &str,
                key: &str,
                value: &str,
            ) -> Result<(), $crate::config::LineProblem> {
                use $crate::config::file::{non_empty, typed};
                $(
                    if section == settings_table!(@section $main $(, $section)?) && key == $key {
                        self.$field = Some(typed(
                            key,
                            settings_table!(@non_empty key, value $(, $empty)?),
                            settings_table!(@parser $value $(, $parse)?),
                        )?);
                        return Ok(());
                    }
                )*
                Err($crate::config::file::unknown_key(section, key))
            }
        }

        /// Merges the command line over the file over the defaults.
        pub(super) fn merge(
            args: &$args,
            file: Option<&FileSettings>,
            $($extra: $extra_ty,)*
        ) -> $config {
            $config {
                $($field: settings_table!(@merged
                    args.$field.clone().or_else(|| file.and_then(|file| file.$field.clone()))
                    $(, default $default)? $(, unset $unset)?
                ),)*
                $($extra,)*
            }
        }

        /// Every setting, in command-line order.
        pub static SETTINGS: &[$crate::config::Setting] = &[$(
            $crate::config::Setting {
                section: settings_table!(@section $main $(, $section)?),
                key: $key,
                option: settings_table!(@option_name $key $(, $section)?),
                switch: settings_table!(@option $($switch)?),
                example: $example,
                blank: settings_table!(@blank $($unset)? $($empty)?),
                text: |config| {
                    settings_table!(@value config.$field $(, $unset)?)
                        .map(|value| settings_table!(@text value $(, $text)?))
                },
                reload: |current, new| {
                    $crate::config::table::Reload::$reload $(($($reload_arg)*))?
                        .apply(
                            settings_table!(@option_name $key $(, $section)?),
                            &current.$field,
                            &mut new.$field,
                        )
                },
            },
        )*];
    };
    // Without a default, a setting may be unset: `None`.
    (@config_type $value:ty) => { $value };
    (@config_type $value:ty, $unset:literal) => { Option<$value> };
    (@merged $given:expr, default $default:expr) => { $given.unwrap_or_else(|| $default) };
    (@merged $given:expr, unset $unset:literal) => { $given };
    (@merged $given:expr) => { compile_error!("a setting needs `default:` or `unset:`") };
    (@value $field:expr) => { Some(&$field) };
    (@value $field:expr, $unset:literal) => { $field.as_ref() };
    (@text $value:expr) => { std::ffi::OsString::from($value.to_string()) };
    // Paths need not be UTF-8.
    (@text $value:expr, path) => { $value.as_os_str().to_owned() };
    (@parser $value:ty) => { <$value as std::str::FromStr>::from_str };
    (@parser $value:ty, $parse:expr) => { $parse };
    (@non_empty $key:ident, $text:ident) => { non_empty($key, $text)? };
    (@non_empty $key:ident, $text:ident, $empty:literal) => { $text };
    // A key of another section than the main one: `--SECTION-KEY`.
    (@option_name $key:literal) => { $key };
    (@option_name $key:literal, $section:literal) => { concat!($section, "-", $key) };
    (@section $main:literal) => { $main };
    (@section $main:literal, $section:literal) => { $section };
    (@option) => { None };
    (@option $switch:literal) => { Some($switch) };
    (@blank) => { "" };
    (@blank $word:literal) => { $word };
    // The table: the header, then the entries.
    ($(#[$meta:meta])* pub struct $args:ident; $($rest:tt)*) => {
        settings_table!(@header [$(#[$meta])* pub struct $args;] $($rest)*);
    };
    (@header [$($header:tt)*]
        $(#[$meta:meta])* pub struct $config:ident { $($fields:tt)* }
        section $section:literal;
        $($entries:tt)*
    ) => {
        settings_table!(@sort
            [$($header)* $(#[$meta])* pub struct $config { $($fields)* } section $section;]
            []
            []
            $($entries)*
        );
    };
}
pub(super) use settings_table;
