//! The command line, as clap types. Ids stay strings here: they are parsed by
//! the commands so that a bad id is reported as `invalid id "..."` (exit 1).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use permitsync::EntityType;

pub use super::serve_args::{LogFormat, ServeArgs};

/// Offline-first Permit-to-Work store: permits, isolation points and closeouts
/// as Automerge documents, with the safety policies applied as a view.
#[derive(Debug, Parser)]
#[command(name = "permitsync", version, propagate_version = true)]
pub struct Cli {
    /// The store directory.
    #[arg(
        long,
        global = true,
        env = "PERMITSYNC_DATA",
        default_value = "./data",
        value_name = "DIR"
    )]
    pub data: PathBuf,

    /// Machine output: the JSON of the object (one document per line, or a JSON
    /// array for lists).
    #[arg(long, global = true)]
    pub json: bool,

    /// Device id recorded in `created_by` when the store is created.
    #[arg(long, global = true, env = "PERMITSYNC_DEVICE", value_name = "NAME")]
    pub device: Option<String>,

    /// Which gas tests a work type needs before a permit of it is activated
    /// (repeatable): `WORK_TYPE=any` (at least one reading), `WORK_TYPE=O2,H2S`
    /// (a reading of each), `WORK_TYPE=none`. Hot work and confined space need
    /// one reading by default. Separate rules with `;` in the variable.
    #[arg(
        long,
        global = true,
        env = "PERMITSYNC_REQUIRE_GAS",
        value_delimiter = ';',
        value_name = "RULE"
    )]
    pub require_gas: Vec<String>,

    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
// `serve`'s options make its variant large; the command is parsed once per
// process, so boxing it would buy nothing
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create and edit permits.
    #[command(subcommand)]
    Permit(PermitCmd),
    /// Create and edit isolation points.
    #[command(subcommand)]
    Isolation(IsolationCmd),
    /// Create and edit closeouts.
    #[command(subcommand)]
    Closeout(CloseoutCmd),
    /// Mark an entity deleted (a tombstone; its history is kept).
    Delete {
        /// The entity id.
        id: String,
    },
    /// Show an entity's view: fields, conflicts, rejected operations, violations.
    Show {
        /// The entity id.
        id: String,
    },
    /// List entities.
    List(ListArgs),
    /// Entities with conflicting values or rejected operations.
    Conflicts,
    /// Settle a conflict on a last-writer-wins field by writing one value
    /// (it replaces every concurrent value, on every replica).
    Resolve(ResolveArgs),
    /// Export documents to a bundle file.
    Export(ExportArgs),
    /// Import a bundle file.
    Import {
        /// The bundle file.
        file: PathBuf,
    },
    /// Run a node on the store: the REST API, the sync WebSocket at /v1/sync,
    /// and connections to other nodes.
    Serve(ServeArgs),
    /// Show a running node's sync status (peers, pending, sent, received, conflicts).
    Status(StatusArgs),
    /// Sync the store once with a node, then exit when both sides are in sync.
    Sync(SyncArgs),
    /// Write a consistent backup of a running node (--node URL, with its admin
    /// token) or of the store in --data: every tenant, device and record.
    Backup(BackupArgs),
    /// Restore a backup into a new, empty --data directory; the restored
    /// store announces a new epoch, so devices push again what it lacks.
    Restore(RestoreArgs),
    /// Copy a relay's whole store between a sled directory and a PostgreSQL
    /// database (documents, feed, tenants, devices, sync states: every key).
    /// Stop the relay first.
    Migrate(MigrateArgs),
    /// Show this store's identity: its key, the tenant it enrolled with,
    /// its certificate and roles, and whether operations are judged
    /// (enforced) or not (open).
    Identity,
    /// Tenant authority keys (for relays).
    #[command(subcommand)]
    Authority(AuthorityCmd),
}

/// `authority` subcommands.
#[derive(Debug, Subcommand)]
pub enum AuthorityCmd {
    /// Make a tenant authority key file to share between relays
    /// (`serve --authority-key FILE`). Never overwrites a file.
    Init {
        /// Where to write the key (64 hex digits, readable by its owner only).
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
}

/// `migrate` options: exactly one of --from-data and --to-data.
#[derive(Debug, Clone, clap::Args)]
#[command(group(clap::ArgGroup::new("direction").required(true).args(["from_data", "to_data"])))]
pub struct MigrateArgs {
    /// Copy the sled store in DIR into the database.
    #[arg(long, value_name = "DIR")]
    pub from_data: Option<PathBuf>,
    /// Copy the database's store into a new sled store in DIR.
    #[arg(long, value_name = "DIR")]
    pub to_data: Option<PathBuf>,
    /// The database, e.g. postgres://permitsync:SECRET@db.example:5432/permitsync.
    #[arg(
        long,
        env = "PERMITSYNC_DATABASE_URL",
        value_name = "URL",
        hide_env_values = true
    )]
    pub database_url: String,
    /// Copy even when the destination already holds a store (its keys are
    /// overwritten by the source's; keys only it has stay).
    #[arg(long)]
    pub into_non_empty: bool,
}

/// `status` options.
#[derive(Debug, Clone, clap::Args)]
pub struct StatusArgs {
    /// The node's HTTP address (http:// or https://).
    #[arg(long, default_value = "http://127.0.0.1:8080", value_name = "URL")]
    pub url: String,
    /// Bearer token, if the node has a tokens file.
    #[arg(long, env = "PERMITSYNC_TOKEN", value_name = "TOKEN")]
    pub token: Option<String>,
    /// Also trust this CA (PEM) for an https:// URL, besides the system's roots.
    #[arg(long, env = "PERMITSYNC_CA_CERT", value_name = "FILE")]
    pub ca_cert: Option<PathBuf>,
}

/// `backup` options.
#[derive(Debug, Clone, clap::Args)]
pub struct BackupArgs {
    /// Write the backup to this file (refused if it exists).
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// Back up this running node (its HTTP address, http:// or https://)
    /// instead of the store in --data.
    #[arg(long, value_name = "URL")]
    pub node: Option<String>,
    /// The node's admin token (serve --admin-token-file), with --node.
    #[arg(
        long,
        env = "PERMITSYNC_ADMIN_TOKEN",
        value_name = "TOKEN",
        hide_env_values = true
    )]
    pub token: Option<String>,
    /// Also trust this CA (PEM) for an https:// URL, besides the system's roots.
    #[arg(long, env = "PERMITSYNC_CA_CERT", value_name = "FILE")]
    pub ca_cert: Option<PathBuf>,
}

/// `restore` options.
#[derive(Debug, Clone, clap::Args)]
pub struct RestoreArgs {
    /// The backup file (`permitsync backup --out FILE`).
    #[arg(long, value_name = "FILE")]
    pub from: PathBuf,
}

/// `sync` options.
#[derive(Debug, Clone, clap::Args)]
pub struct SyncArgs {
    /// The node's sync URL, e.g. ws://127.0.0.1:8080/v1/sync?token=SECRET
    /// or wss://relay.example/v1/sync?token=SECRET. Several (repeated or
    /// separated by commas): the relays of one cluster, tried in order until
    /// one completes the sync.
    #[arg(required = true, num_args = 1.., value_name = "URL")]
    pub url: Vec<String>,
    /// Give up after this many seconds.
    #[arg(long, default_value_t = 120, value_name = "SECS")]
    pub timeout: u64,
    /// Also trust this CA (PEM) for a wss:// URL, besides the system's roots.
    #[arg(long, env = "PERMITSYNC_CA_CERT", value_name = "FILE")]
    pub ca_cert: Option<PathBuf>,
}

/// Add or remove an item of a set.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum SetAction {
    /// Add the item.
    Add,
    /// Remove the item.
    Remove,
}

/// Permit subcommands.
#[derive(Debug, Subcommand)]
pub enum PermitCmd {
    /// Create a permit (status draft); prints its id.
    Create(PermitCreate),
    /// Set text fields (each given field is one edit).
    Set(PermitSet),
    /// Move the permit through its workflow.
    Status {
        /// The permit id.
        id: String,
        /// The new status (draft, submitted, approved, active, suspended,
        /// completed, closed, cancelled).
        status: String,
    },
    /// Add or remove a PPE requirement.
    Ppe {
        /// The permit id.
        id: String,
        /// add or remove.
        action: SetAction,
        /// The PPE item.
        item: String,
    },
    /// Tick a safety checklist item (`--add` for a new item).
    Tick(TickArgs),
    /// Record a gas reading.
    Gas(GasArgs),
    /// Record photo metadata.
    Photo(PhotoArgs),
}

/// `permit create`.
#[derive(Debug, Args)]
pub struct PermitCreate {
    /// Title (required).
    #[arg(long)]
    pub title: String,
    /// Location.
    #[arg(long, default_value = "")]
    pub location: String,
    /// Work type, e.g. hot_work.
    #[arg(long, default_value = "")]
    pub work_type: String,
    /// Description.
    #[arg(long, default_value = "")]
    pub description: String,
    /// A PPE requirement (repeatable).
    #[arg(long = "ppe", value_name = "ITEM")]
    pub ppe: Vec<String>,
    /// A safety checklist item, unticked (repeatable).
    #[arg(long = "check", value_name = "ITEM")]
    pub check: Vec<String>,
}

/// `permit set`.
#[derive(Debug, Args)]
#[command(group(
    clap::ArgGroup::new("fields")
        .required(true)
        .multiple(true)
        .args(["title", "location", "work_type", "description"])
))]
pub struct PermitSet {
    /// The permit id.
    pub id: String,
    /// New title.
    #[arg(long)]
    pub title: Option<String>,
    /// New location.
    #[arg(long)]
    pub location: Option<String>,
    /// New work type.
    #[arg(long)]
    pub work_type: Option<String>,
    /// New description (merged character by character).
    #[arg(long)]
    pub description: Option<String>,
}

/// `permit tick` and `closeout tick`.
#[derive(Debug, Args)]
pub struct TickArgs {
    /// The entity id.
    pub id: String,
    /// The checklist item.
    pub item: String,
    /// Untick instead (a tick merged from elsewhere still wins).
    #[arg(long)]
    pub untick: bool,
    /// Add the item when the checklist does not have it yet (without it, a
    /// mistyped item is refused rather than added).
    #[arg(long)]
    pub add: bool,
}

/// `permit gas`.
#[derive(Debug, Args)]
pub struct GasArgs {
    /// The permit id.
    pub id: String,
    /// The gas, e.g. H2S.
    #[arg(long)]
    pub gas: String,
    /// The measured value.
    #[arg(long, allow_negative_numbers = true)]
    pub value: f64,
    /// The unit, e.g. ppm.
    #[arg(long)]
    pub unit: String,
    /// Lowest acceptable value.
    #[arg(long, allow_negative_numbers = true)]
    pub min: f64,
    /// Highest acceptable value.
    #[arg(long, allow_negative_numbers = true)]
    pub max: f64,
    /// When taken, in ms since the Unix epoch (default: now).
    #[arg(long, value_name = "MS")]
    pub taken_at: Option<i64>,
    /// The reading's id (default: a fresh UUID); the same id twice is one reading.
    #[arg(long, value_name = "UUID")]
    pub reading_id: Option<String>,
}

/// `permit photo`.
#[derive(Debug, Args)]
pub struct PhotoArgs {
    /// The permit id.
    pub id: String,
    /// Hex SHA-256 of the image bytes.
    #[arg(long, value_name = "HEX")]
    pub sha256: String,
    /// MIME type, e.g. image/jpeg.
    #[arg(long, value_name = "M")]
    pub mime: String,
    /// Size in bytes.
    #[arg(long, value_name = "N")]
    pub size: u64,
    /// Caption.
    #[arg(long, default_value = "")]
    pub caption: String,
}

/// Isolation point subcommands.
#[derive(Debug, Subcommand)]
pub enum IsolationCmd {
    /// Create an isolation point of a permit (status assigned); prints its id.
    Create {
        /// The permit it belongs to.
        #[arg(long, value_name = "PID")]
        permit: String,
        /// Description.
        #[arg(long, default_value = "")]
        description: String,
        /// A lock id applied (repeatable).
        #[arg(long = "lock", value_name = "LOCK")]
        locks: Vec<String>,
    },
    /// Raise the status (assigned < isolated < verified < deisolated).
    Status {
        /// The isolation point id.
        id: String,
        /// The new status.
        status: String,
    },
    /// Add or remove a lock id.
    Lock {
        /// The isolation point id.
        id: String,
        /// add or remove.
        action: SetAction,
        /// The lock id.
        lock: String,
    },
    /// Replace the description (merged character by character).
    Describe {
        /// The isolation point id.
        id: String,
        /// The new description.
        text: String,
    },
}

/// Closeout subcommands.
#[derive(Debug, Subcommand)]
pub enum CloseoutCmd {
    /// Create the closeout of a permit; prints its id.
    Create {
        /// The permit it closes out.
        #[arg(long, value_name = "PID")]
        permit: String,
        /// A checklist item, unticked (repeatable).
        #[arg(long = "check", value_name = "ITEM")]
        check: Vec<String>,
        /// Notes.
        #[arg(long, default_value = "")]
        notes: String,
    },
    /// Tick a checklist item (`--add` for a new item).
    Tick(TickArgs),
    /// Mark the closeout completed.
    Complete {
        /// The closeout id.
        id: String,
    },
    /// Replace the notes (merged character by character).
    Notes {
        /// The closeout id.
        id: String,
        /// The new notes.
        text: String,
    },
}

/// An entity type on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum TypeArg {
    /// Permits.
    #[value(name = "permit")]
    Permit,
    /// Isolation points.
    #[value(name = "isolation_point")]
    IsolationPoint,
    /// Closeouts.
    #[value(name = "closeout")]
    Closeout,
}

impl From<TypeArg> for EntityType {
    fn from(t: TypeArg) -> Self {
        match t {
            TypeArg::Permit => EntityType::Permit,
            TypeArg::IsolationPoint => EntityType::IsolationPoint,
            TypeArg::Closeout => EntityType::Closeout,
        }
    }
}

/// `list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only entities of this type.
    #[arg(long = "type", value_name = "TYPE")]
    pub entity_type: Option<TypeArg>,
    /// Only entities with this status.
    #[arg(long)]
    pub status: Option<String>,
    /// Include deleted entities.
    #[arg(long)]
    pub all: bool,
}

/// `export`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// The bundle file to write.
    pub file: PathBuf,
    /// Only documents changed after this change-feed position.
    #[arg(
        long,
        value_name = "CURSOR",
        default_value_t = 0,
        conflicts_with = "ids"
    )]
    pub since: u64,
    /// Only these entities (repeatable).
    #[arg(long = "id", value_name = "ID")]
    pub ids: Vec<String>,
}

/// `resolve`.
#[derive(Debug, Args)]
pub struct ResolveArgs {
    /// The entity id.
    pub id: String,
    /// The field in conflict (`title`, `location`, `work_type`).
    pub field: String,
    /// `use_server` (keep the value shown now), `keep_mine` or `merge` (write
    /// `--value`).
    pub resolution: String,
    /// The value to write, for `keep_mine` and `merge`.
    #[arg(long)]
    pub value: Option<String>,
}
