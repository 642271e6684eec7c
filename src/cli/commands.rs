//! Dispatch: each subcommand becomes library calls on one [`Store`], and an
//! [`Outcome`] that `output` renders.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{anyhow, Result};
use permitsync::bundle::{self, ImportReport};
use permitsync::resolve::{self, Resolution};
use permitsync::store::{CostLimits, PgBackend, Store, StoreOptions, Summary};
use permitsync::write::{
    Edit, Interlocks, NewCloseout, NewGasReading, NewIsolationPoint, NewPermit, NewPhoto,
};
use permitsync::{EntityId, EntityType, Error, View};
use uuid::Uuid;

use super::args::{
    CloseoutCmd, Command, ExportArgs, IsolationCmd, ListArgs, PermitCmd, PermitSet, SetAction,
    TickArgs,
};

/// What a command produced, for `output` to render.
pub enum Outcome {
    /// A new entity (human output: its id).
    Created(View),
    /// Edits to an entity: how many changes were written (0 when nothing changed).
    Edited {
        /// The entity after the edits.
        view: View,
        /// Changes written.
        changes: usize,
    },
    /// `show`.
    Show(View),
    /// `list`.
    List {
        /// The entities.
        rows: Vec<Summary>,
        /// How human output names entities without a title: an isolation
        /// point by its description, a closeout by its permit.
        labels: BTreeMap<EntityId, String>,
    },
    /// `conflicts`.
    Conflicts(Vec<View>),
    /// `export`.
    Exported {
        /// The file written.
        file: PathBuf,
        /// Documents in the bundle.
        documents: usize,
        /// Size of the bundle.
        bytes: usize,
        /// The store's change-feed position: pass it as `--since` next time.
        cursor: u64,
    },
    /// `import`.
    Imported {
        /// The file read.
        file: PathBuf,
        /// What the import did.
        report: ImportReport,
    },
}

/// Open the store in `data`; `device` is recorded when the store is created;
/// `require_gas` are the gas rules of the interlocks (`--require-gas`).
pub fn open_store(data: &Path, device: Option<String>, require_gas: &[String]) -> Result<Store> {
    open_store_with(
        StoreAt::Sled(data),
        device,
        require_gas,
        CostLimits::default(),
    )
}

/// Where a store lives: a sled directory (`--data`) or a PostgreSQL database
/// (`serve --database-url`).
#[derive(Clone, Copy, Debug)]
pub enum StoreAt<'a> {
    /// A sled store in this directory.
    Sled(&'a Path),
    /// The database at this URL.
    Postgres(&'a str),
}

impl std::fmt::Display for StoreAt<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreAt::Sled(path) => write!(f, "sled {}", path.display()),
            // the URL may hold a password
            StoreAt::Postgres(_) => f.write_str("postgres"),
        }
    }
}

/// The gas rules of `--require-gas` over the defaults.
pub fn interlocks(require_gas: &[String]) -> Result<Interlocks> {
    let mut interlocks = Interlocks::default();
    for rule in require_gas {
        interlocks
            .set_rule(rule)
            .map_err(|e| anyhow!("--require-gas: {e}"))?;
    }
    Ok(interlocks)
}

/// [`open_store`] at `at`, with the cost limits of `serve`.
pub fn open_store_with(
    at: StoreAt<'_>,
    device: Option<String>,
    require_gas: &[String],
    cost: CostLimits,
) -> Result<Store> {
    let opts = StoreOptions {
        device,
        interlocks: interlocks(require_gas)?,
        cost,
        ..StoreOptions::default()
    };
    tracing::debug!(store = %at, "opening store");
    match at {
        StoreAt::Sled(data) => Store::open_with(data, opts).map_err(|e| match e {
            // already names the store and says what to do
            permitsync::Error::Locked { .. } => e.into(),
            e => anyhow!("cannot open the store at {}: {e}", data.display()),
        }),
        StoreAt::Postgres(url) => {
            // the engine's errors name the database (without its password)
            let backend = PgBackend::connect(url)?;
            tracing::info!(database = backend.target(), "store on PostgreSQL");
            Ok(Store::with_backend(Arc::new(backend), opts)?)
        }
    }
}

/// Run one command against `store`.
pub fn run(store: &Store, command: Command) -> Result<Outcome> {
    match command {
        Command::Permit(cmd) => permit(store, cmd),
        Command::Isolation(cmd) => isolation(store, cmd),
        Command::Closeout(cmd) => closeout(store, cmd),
        Command::Delete { id } => {
            let id = entity(store, &id, None)?;
            edits(store, id, vec![Edit::Delete])
        }
        Command::Show { id } => {
            let id = parse_id(&id)?;
            Ok(Outcome::Show(store.view(id)?))
        }
        Command::List(args) => list(store, args),
        Command::Conflicts => Ok(Outcome::Conflicts(store.conflicts()?)),
        Command::Resolve(a) => {
            let id = entity(store, &a.id, None)?;
            let resolution = a.resolution.parse::<Resolution>()?;
            let view = resolve::resolve(store, id, &a.field, resolution, a.value.as_deref())?;
            Ok(Outcome::Edited { view, changes: 1 })
        }
        Command::Export(args) => export(store, args),
        Command::Import { file } => import(store, file),
        Command::Serve(_)
        | Command::Status(_)
        | Command::Sync(_)
        | Command::Backup(_)
        | Command::Restore(_)
        | Command::Migrate(_)
        | Command::Identity
        | Command::Authority(_) => {
            anyhow::bail!("node commands are run by cli::node_cmds")
        }
    }
}

fn permit(store: &Store, cmd: PermitCmd) -> Result<Outcome> {
    let permit = |raw: &str| entity(store, raw, Some(EntityType::Permit));
    match cmd {
        PermitCmd::Create(a) => {
            let id = store.create_permit(NewPermit {
                id: None,
                title: a.title,
                location: a.location,
                work_type: a.work_type,
                description: a.description,
                ppe_requirements: a.ppe,
                safety_checklist: a.check,
            })?;
            Ok(Outcome::Created(store.view(id)?))
        }
        PermitCmd::Set(a) => {
            let id = permit(&a.id)?;
            edits(store, id, set_edits(a)?)
        }
        PermitCmd::Status { id, status } => {
            edits(store, permit(&id)?, vec![Edit::SetStatus(status)])
        }
        PermitCmd::Ppe { id, action, item } => {
            let edit = set_edit("ppe_requirements", action, item);
            edits(store, permit(&id)?, vec![edit])
        }
        PermitCmd::Tick(a) => tick(store, a, EntityType::Permit, "safety_checklist"),
        PermitCmd::Gas(a) => {
            let id = permit(&a.id)?;
            let reading = NewGasReading {
                id: a
                    .reading_id
                    .as_deref()
                    .map(|r| parse_uuid("reading id", r))
                    .transpose()?,
                gas: a.gas,
                value: a.value,
                unit: a.unit,
                min: a.min,
                max: a.max,
                taken_at: a.taken_at,
            };
            edits(store, id, vec![Edit::AddGasReading(reading)])
        }
        PermitCmd::Photo(a) => {
            let id = permit(&a.id)?;
            let photo = NewPhoto {
                id: None,
                sha256: a.sha256,
                mime: a.mime,
                size: a.size,
                caption: a.caption,
                taken_at: None,
            };
            edits(store, id, vec![Edit::AddPhoto(photo)])
        }
    }
}

/// The edits of `permit set`, checked up front so that a bad value refuses the
/// whole command before anything is written.
fn set_edits(a: PermitSet) -> Result<Vec<Edit>> {
    if a.title.as_deref().is_some_and(|t| t.trim().is_empty()) {
        return Err(Error::InvalidInput("a permit needs a title".into()).into());
    }
    let field = |name: &str, value: Option<String>| {
        value.map(|value| Edit::SetField {
            field: name.to_string(),
            value,
        })
    };
    Ok([
        field("title", a.title),
        field("location", a.location),
        field("work_type", a.work_type),
        a.description.map(|text| Edit::SetText {
            field: "description".into(),
            text,
        }),
    ]
    .into_iter()
    .flatten()
    .collect())
}

fn isolation(store: &Store, cmd: IsolationCmd) -> Result<Outcome> {
    let point = |raw: &str| entity(store, raw, Some(EntityType::IsolationPoint));
    match cmd {
        IsolationCmd::Create {
            permit,
            description,
            locks,
        } => {
            let id = store.create_isolation_point(NewIsolationPoint {
                id: None,
                permit_id: parse_id(&permit)?,
                description,
                lock_ids: locks,
            })?;
            Ok(Outcome::Created(store.view(id)?))
        }
        IsolationCmd::Status { id, status } => {
            edits(store, point(&id)?, vec![Edit::SetStatus(status)])
        }
        IsolationCmd::Lock { id, action, lock } => {
            let edit = set_edit("lock_ids", action, lock);
            edits(store, point(&id)?, vec![edit])
        }
        IsolationCmd::Describe { id, text } => {
            let edit = Edit::SetText {
                field: "description".into(),
                text,
            };
            edits(store, point(&id)?, vec![edit])
        }
    }
}

fn closeout(store: &Store, cmd: CloseoutCmd) -> Result<Outcome> {
    let closeout = |raw: &str| entity(store, raw, Some(EntityType::Closeout));
    match cmd {
        CloseoutCmd::Create {
            permit,
            check,
            notes,
        } => {
            let id = store.create_closeout(NewCloseout {
                id: None,
                permit_id: parse_id(&permit)?,
                checklist: check,
                notes,
            })?;
            Ok(Outcome::Created(store.view(id)?))
        }
        CloseoutCmd::Tick(a) => tick(store, a, EntityType::Closeout, "checklist"),
        CloseoutCmd::Complete { id } => {
            let edit = Edit::SetFlag {
                field: "completed".into(),
                value: true,
            };
            edits(store, closeout(&id)?, vec![edit])
        }
        CloseoutCmd::Notes { id, text } => {
            let edit = Edit::SetText {
                field: "notes".into(),
                text,
            };
            edits(store, closeout(&id)?, vec![edit])
        }
    }
}

fn tick(store: &Store, a: TickArgs, ty: EntityType, field: &str) -> Result<Outcome> {
    let id = entity(store, &a.id, Some(ty))?;
    if !a.add {
        let view = store.view(id)?;
        let items: Vec<&String> = view.fields[field]
            .as_object()
            .map(|m| m.keys().collect())
            .unwrap_or_default();
        if !items.iter().any(|i| **i == a.item) {
            let known: Vec<String> = items.iter().map(|i| format!("{i:?}")).collect();
            anyhow::bail!(
                "{ty} {id} has no checklist item {:?} (items: {}); pass --add to add it",
                a.item,
                if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                }
            );
        }
    }
    let edit = Edit::Tick {
        field: field.to_string(),
        item: a.item,
        ticked: !a.untick,
    };
    edits(store, id, vec![edit])
}

fn set_edit(field: &str, action: SetAction, item: String) -> Edit {
    let field = field.to_string();
    match action {
        SetAction::Add => Edit::AddItem { field, item },
        SetAction::Remove => Edit::RemoveItem { field, item },
    }
}

/// Apply `list` in order; each is one change (or none when it changes nothing).
fn edits(store: &Store, id: EntityId, list: Vec<Edit>) -> Result<Outcome> {
    let mut changes = 0;
    for edit in list {
        tracing::debug!(%id, ?edit, "edit");
        if let Some(hash) = store.edit(id, edit)? {
            tracing::info!(%id, change = %hash, "written");
            changes += 1;
        }
    }
    Ok(Outcome::Edited {
        view: store.view(id)?,
        changes,
    })
}

fn list(store: &Store, args: ListArgs) -> Result<Outcome> {
    let ty = args.entity_type.map(EntityType::from);
    let rows = store.list(ty, args.status.as_deref(), args.all)?;
    let mut labels = BTreeMap::new();
    for s in &rows {
        let Some(permit) = s.permit_id else {
            continue;
        };
        let permit_title = store
            .summary(permit)?
            .and_then(|p| p.title)
            .unwrap_or_else(|| permit.to_string());
        let label = match s.entity_type {
            EntityType::IsolationPoint => {
                let view = store.view(s.id)?;
                let description = view.str_field("description").unwrap_or("").trim();
                format!("{description} (permit {permit_title})")
            }
            _ => format!("(permit {permit_title})"),
        };
        labels.insert(s.id, label.trim_start().to_string());
    }
    Ok(Outcome::List { rows, labels })
}

fn export(store: &Store, args: ExportArgs) -> Result<Outcome> {
    let ids = args
        .ids
        .iter()
        .map(|raw| entity(store, raw, None))
        .collect::<Result<Vec<_>>>()?;
    let cursor = store.feed_head();
    let bytes = bundle::export(store, (!ids.is_empty()).then_some(&ids[..]), args.since)?;
    let documents = bundle::decode(&bytes)?.len();
    write_file(&args.file, &bytes)?;
    Ok(Outcome::Exported {
        file: args.file,
        documents,
        bytes: bytes.len(),
        cursor,
    })
}

fn import(store: &Store, file: PathBuf) -> Result<Outcome> {
    let bytes = std::fs::read(&file).map_err(|e| anyhow!("cannot read {}: {e}", file.display()))?;
    let report = bundle::import(store, &bytes)?;
    Ok(Outcome::Imported { file, report })
}

/// Write `bytes` to `path` through a temporary file in the same directory, so
/// that a failed export never leaves a half-written bundle under the name.
fn write_file(path: &Path, bytes: &[u8]) -> Result<()> {
    let name = path
        .file_name()
        .ok_or_else(|| anyhow!("cannot write {}: not a file name", path.display()))?;
    let mut tmp_name = name.to_os_string();
    tmp_name.push(".partial");
    let tmp = path.with_file_name(tmp_name);
    std::fs::write(&tmp, bytes)
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            anyhow!("cannot write {}: {e}", path.display())
        })
}

/// Parse an entity id: `invalid id "xyz": ...`.
pub fn parse_id(raw: &str) -> Result<EntityId> {
    parse_uuid("id", raw).map(EntityId::from)
}

fn parse_uuid(what: &str, raw: &str) -> Result<Uuid> {
    Uuid::parse_str(raw).map_err(|e| anyhow!("invalid {what} {raw:?}: {e}"))
}

/// Parse `raw` and check that the store holds it (of type `expected`, if given).
fn entity(store: &Store, raw: &str, expected: Option<EntityType>) -> Result<EntityId> {
    let id = parse_id(raw)?;
    let summary = store.summary(id)?.ok_or(Error::UnknownEntity(id))?;
    match expected {
        Some(expected) if expected != summary.entity_type => Err(Error::WrongType {
            id,
            expected,
            actual: summary.entity_type,
        }
        .into()),
        _ => Ok(id),
    }
}
