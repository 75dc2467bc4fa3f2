//! The machinery of the table of settings in `config.rs`: the [`settings!`] macro that turns
//! one row per setting into its flag, its environment variable, its config file key and the
//! [`Config`](super::Config) field it becomes, and the layers a value can come from
//! ([`Place`], [`Given`]).

use std::path::Path;

use clap::parser::ValueSource;

/// Declares every setting once. Each row is a field of the clap struct with its file key:
///
/// ```text
/// /// Help text: `--help` shows it, and it documents the `Config` field.
/// #[arg(long, env = "TAPEDECK_NAME", default_value_t = DEFAULT_NAME)]
/// name: Type, file "name" => file::parser;
/// ```
///
/// - `#[arg(...)]` is clap's, as in any derive: the flag, its environment variable, its
///   default and its value parser.
/// - `Type` is the flag's type, and the `Config` field's. A setting without a default is an
///   `Option<T>` (its file key holds a `T`). A repeatable flag is a `Vec<T>` whose `#[arg]`
///   begins `long = "singular"`: its file key and environment variable take the list.
/// - `file "name" => parser`: the config file key, and the function from
///   [`super::file`] that reads its TOML value (`fn(toml::Value) -> Result<T, KeyError>`).
/// - `, into Type => function` at the end: the `Config` field has another type, made by
///   `function` from the flag's.
///
/// From the rows it makes: `Flags` (the clap arguments, flattened into `Cli`), `KEYS` and
/// `LISTS` (the file's keys), `FileSettings` and its `set` (one key of the file), `Layered`
/// (each setting's value from the layer that won, [`Given::pick`]) and `Config` (built by
/// `Layered::finish`). The rules between settings are in [`super::rules`].
macro_rules! settings {
    // Each row is read into one shape, `{ [docs] [arg] name: flag type, file file type =
    // "key" => parser, into Config type => function, list [singular flag] }`, then all are
    // generated at once.
    //
    // A setting without a default: the file's key holds the `T` of its `Option<T>`.
    (@read [$($rows:tt)*]
        $(#[doc = $doc:literal])* #[arg($($arg:tt)*)]
        $field:ident: Option<$ty:ty>, file $key:literal => $parse:expr;
        $($rest:tt)*
    ) => {
        $crate::config::table::settings!(@read [$($rows)* {
            [$($doc)*] [$($arg)*] $field: Option<$ty>, file $ty = $key => $parse,
            into Option<$ty> => ::std::convert::identity, list []
        }] $($rest)*);
    };
    // A repeatable flag, named in the singular; its key is in the plural.
    (@read [$($rows:tt)*]
        $(#[doc = $doc:literal])* #[arg(long = $long:literal, $($arg:tt)*)]
        $field:ident: $ty:ty, file $key:literal => $parse:expr;
        $($rest:tt)*
    ) => {
        $crate::config::table::settings!(@read [$($rows)* {
            [$($doc)*] [long = $long, $($arg)*] $field: $ty, file $ty = $key => $parse,
            into $ty => ::std::convert::identity, list [$long]
        }] $($rest)*);
    };
    // A setting whose `Config` field has another type.
    (@read [$($rows:tt)*]
        $(#[doc = $doc:literal])* #[arg($($arg:tt)*)]
        $field:ident: $ty:ty, file $key:literal => $parse:expr, into $config:ty => $finish:expr;
        $($rest:tt)*
    ) => {
        $crate::config::table::settings!(@read [$($rows)* {
            [$($doc)*] [$($arg)*] $field: $ty, file $ty = $key => $parse, into $config => $finish, list []
        }] $($rest)*);
    };
    // Any other setting.
    (@read [$($rows:tt)*]
        $(#[doc = $doc:literal])* #[arg($($arg:tt)*)]
        $field:ident: $ty:ty, file $key:literal => $parse:expr;
        $($rest:tt)*
    ) => {
        $crate::config::table::settings!(@read [$($rows)* {
            [$($doc)*] [$($arg)*] $field: $ty, file $ty = $key => $parse,
            into $ty => ::std::convert::identity, list []
        }] $($rest)*);
    };
    // Every row read.
    (@read [$({
        [$($doc:literal)*] [$($arg:tt)*] $field:ident: $flag:ty, file $file:ty = $key:literal => $parse:expr,
        into $config:ty => $finish:expr, list [$($long:literal)?]
    })*]) => {
        // The settings' flags, flattened into `Cli`. (No doc comment: clap would make it the
        // about text of the command.)
        #[derive(Debug, clap::Args)]
        #[group(skip)]
        pub struct Flags {
            $($(#[doc = $doc])* #[arg($($arg)*)] pub $field: $flag,)*
        }

        /// The keys a config file may hold: the long flags without `--` (except `--config`),
        /// with the plural of a repeatable flag ([`LISTS`]).
        pub const KEYS: &[&str] = &[$($key),*];

        /// The repeatable flags, and the key (and environment variable) that takes their list.
        pub const LISTS: &[(&str, &str)] = &[$($(($long, $key),)?)*];

        /// The settings a config file gave; `None` for every key it did not.
        #[derive(Debug, Default)]
        pub struct FileSettings {
            $(pub $field: Option<$file>,)*
        }

        impl FileSettings {
            /// Reads one key of the file.
            fn set(&mut self, key: &str, value: ::toml::Value) -> Result<(), $crate::config::file::KeyError> {
                match key {
                    $($key => self.$field = Some($parse(value)?),)*
                    _ => return Err($crate::config::file::KeyError::Unknown),
                }
                Ok(())
            }
        }

        /// Each setting's value from the layer that won, before the rules between settings.
        struct Layered {
            $($field: $crate::config::table::Given<$flag>,)*
        }

        impl Layered {
            /// Picks each setting's layer; `place(id)` says where the flag with clap id `id`
            /// got its value.
            fn new(flags: Flags, file: FileSettings, place: impl Fn(&str) -> $crate::config::table::Place) -> Layered {
                use $crate::config::table::Given;
                Layered { $($field: Given::pick(place(stringify!($field)), flags.$field, file.$field),)* }
            }

            /// The typed configuration (call after `check`).
            fn finish(self, config_file: Option<::std::path::PathBuf>) -> Config {
                Config { config_file, $($field: $finish(self.$field.value),)* }
            }
        }

        /// The daemon's settings, typed and checked: each field is its flag's, after the rules
        /// between settings (`token` holds the token of `--token` or of `--token-file`).
        /// `Debug` is safe to log: the token prints as `<redacted>`.
        #[derive(Debug, Clone)]
        pub struct Config {
            /// The config file the settings were read from, if any.
            pub config_file: Option<::std::path::PathBuf>,
            $($(#[doc = $doc])* pub $field: $config,)*
        }
    };
    // A row that has none of the shapes above.
    (@read [$($rows:tt)*] $($rest:tt)+) => {
        compile_error!(concat!(
            "settings!: expected `/// doc`, `#[arg(...)]`, `name: Type, file \"key\" => parser;` ",
            "(or `..., into Type => function;`), found: ",
            stringify!($($rest)+)
        ));
    };
    ($($table:tt)*) => {
        $crate::config::table::settings!(@read [] $($table)*);
    };
}
pub(super) use settings;

/// Where a value came from, lowest precedence first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Place {
    Default,
    File,
    Environment,
    CommandLine,
}

impl Place {
    /// Where clap got a flag's value: a clap default counts as [`Place::Default`], so that
    /// the config file can still give it.
    pub(super) fn of(source: Option<ValueSource>) -> Place {
        match source {
            Some(ValueSource::CommandLine) => Place::CommandLine,
            Some(ValueSource::EnvVariable) => Place::Environment,
            _ => Place::Default,
        }
    }

    /// Names the flag, variable or key that gave a value, for error messages.
    pub(super) fn describe(self, flag: &str, file: Option<&Path>) -> String {
        match self {
            Place::CommandLine => format!("--{flag}"),
            Place::Environment => format!("TAPEDECK_{}", flag.replace('-', "_").to_uppercase()),
            Place::File => {
                format!("`{flag}` in {}", file.map_or("the config file".into(), |f| f.display().to_string()))
            }
            Place::Default => "the default".to_owned(),
        }
    }
}

/// A setting's value, and the layer that gave it.
pub(super) struct Given<T> {
    pub(super) value: T,
    pub(super) place: Place,
}

impl<T> Given<T> {
    /// The flag's value if the command line or the environment gave it (`place` says which),
    /// else the file's, else the flag's (which then is clap's default, the built-in one). The
    /// file's value has the flag's type, or for an optional flag (`Option<T>`) its `T`.
    pub(super) fn pick(place: Place, flag: T, file: Option<impl Into<T>>) -> Given<T> {
        match file {
            Some(value) if place == Place::Default => Given { value: value.into(), place: Place::File },
            _ => Given { value: flag, place },
        }
    }
}
