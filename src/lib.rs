//! # permitsync
//!
//! An offline-first, peer-replicated store for Permit-to-Work records. Every
//! entity (permit, isolation point, closeout) is one Automerge document, kept in
//! an embedded sled store. Devices edit offline and exchange change sets; the
//! safety policies (set-merge, true-wins, monotonic status, the permit workflow
//! with its guard) are a deterministic *view* over the merged document, so every
//! replica holding the same changes shows the same, safe result.
//!
//! Layers, bottom up (see `docs/architecture.md`):
//! - [`model`]: entity ids and types, and the schema (which policy governs which field);
//! - [`view`]: the pure policy view over a document's operation history;
//! - [`EntityDoc`]: an Automerge document with its history, kept in step;
//! - [`write`]: validated local edits (an edit the view would reject is refused);
//! - [`store`]: durable storage behind the [`store::Backend`] trait (sled by default),
//!   with a change feed, indexes, a bounded document cache and group commit;
//! - [`bundle`]: change bundles for sites without any network.
//!
//! ```
//! use permitsync::store::Store;
//! use permitsync::write::{Edit, NewPermit};
//!
//! # fn main() -> permitsync::Result<()> {
//! let dir = tempfile::tempdir()?;
//! let store = Store::open(dir.path())?;
//! let id = store.create_permit(NewPermit {
//!     title: "Replace pump seal".into(),
//!     location: "Pump house 2".into(),
//!     work_type: "mechanical".into(),
//!     safety_checklist: vec!["isolation confirmed".into()],
//!     ..Default::default()
//! })?;
//! store.edit(id, Edit::SetStatus("submitted".into()))?;
//! // draft -> active is not a legal transition: refused, nothing written
//! let err = store.edit(id, Edit::SetStatus("active".into())).unwrap_err();
//! assert_eq!(err.to_string(), "invalid transition submitted -> active");
//! let view = store.view(id)?;
//! assert_eq!(view.str_field("status"), Some("submitted"));
//! # Ok(()) }
//! ```

pub mod bundle;
pub mod classic;
mod document;
mod error;
pub mod identity;
pub mod model;
pub mod node;
pub mod resolve;
pub mod store;
pub mod sync;
pub mod view;
pub mod wire;
pub mod write;

pub use document::EntityDoc;
pub use error::{Error, Result};
pub use model::{EntityId, EntityType};
pub use view::View;
