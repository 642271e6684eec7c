//! The storage engines a test can run on, so that the same test runs on
//! each: a [`Kind`] makes an [`Engine`] (fresh storage: a sled directory, an
//! in-memory map, or a PostgreSQL database of its own), which opens stores
//! and backends on that storage as often as wanted (a reopen sees what the
//! last one wrote). [`crate::engine_tests!`] turns test functions taking a
//! [`Kind`] into one test per engine.

use std::sync::Arc;

use permitsync::store::{Backend, MemBackend, PgBackend, SledBackend, Store, StoreOptions};

use super::pg::{self, TestDatabase};

/// A storage engine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// sled in a temporary directory.
    Sled,
    /// The in-memory backend (a reopen sees the same map).
    Mem,
    /// A PostgreSQL database of the test's own.
    Postgres,
}

impl Kind {
    /// The engine named `name` (`sled`, `mem`, `postgres`), or `None` when
    /// its tests are skipped (`PERMITSYNC_SKIP_PG=1`; see [`pg::server_url`]).
    pub fn available(name: &str) -> Option<Kind> {
        match name {
            "sled" => Some(Kind::Sled),
            "mem" => Some(Kind::Mem),
            "postgres" => pg::server_url().map(|_| Kind::Postgres),
            other => panic!("unknown engine {other}"),
        }
    }

    /// Fresh, empty storage of this kind.
    pub fn engine(self) -> Engine {
        let place = match self {
            Kind::Sled => Place::Sled(tempfile::tempdir().expect("tempdir")),
            Kind::Mem => Place::Mem(Arc::new(MemBackend::new())),
            Kind::Postgres => Place::Postgres(
                TestDatabase::create().expect("PostgreSQL tests are not skipped here"),
            ),
        };
        Engine { kind: self, place }
    }
}

enum Place {
    Sled(tempfile::TempDir),
    Mem(Arc<MemBackend>),
    Postgres(TestDatabase),
}

/// Storage of one kind, opened as often as a test wants.
pub struct Engine {
    /// What it is.
    pub kind: Kind,
    place: Place,
}

impl Engine {
    /// A backend on this storage (sled: drop it before opening another).
    pub fn backend(&self) -> Arc<dyn Backend> {
        match &self.place {
            Place::Sled(dir) => Arc::new(SledBackend::open(dir.path()).expect("open sled")),
            Place::Mem(map) => map.clone(),
            Place::Postgres(db) => Arc::new(PgBackend::connect(&db.url).expect("connect")),
        }
    }

    /// A store on this storage with default options.
    pub fn open(&self) -> Store {
        self.open_with(StoreOptions::default())
    }

    /// A store on this storage.
    pub fn open_with(&self, opts: StoreOptions) -> Store {
        match &self.place {
            Place::Sled(dir) => Store::open_with(dir.path(), opts).expect("open"),
            _ => Store::with_backend(self.backend(), opts).expect("open"),
        }
    }

    /// The database's URL (PostgreSQL only).
    pub fn database_url(&self) -> Option<&str> {
        match &self.place {
            Place::Postgres(db) => Some(&db.url),
            _ => None,
        }
    }
}

/// `engine_tests!(sled, mem, postgres; a, b)` makes, for each engine named,
/// a module of tests `ENGINE::a`, `ENGINE::b` that call `fn a(kind: Kind)`
/// and `fn b(kind: Kind)` of the file with that engine.
#[macro_export]
macro_rules! engine_tests {
    (@module $engine:ident; $($name:ident),+) => {
        mod $engine {
            $(
                #[test]
                fn $name() {
                    if let Some(kind) =
                        $crate::support::engine::Kind::available(stringify!($engine))
                    {
                        super::$name(kind);
                    }
                }
            )+
        }
    };
    (; $($name:ident),+ $(,)?) => {};
    ($engine:ident $(, $more:ident)* ; $($name:ident),+ $(,)?) => {
        $crate::engine_tests!(@module $engine; $($name),+);
        $crate::engine_tests!($($more),* ; $($name),+);
    };
}
