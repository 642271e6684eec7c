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
//! Two replicas edit the same permit apart, then merge; each shows the same,
//! policy-checked result:
//!
//! ```
//! use permitsync::store::Store;
//! use permitsync::write::{Edit, NewPermit};
//!
//! # fn main() -> permitsync::Result<()> {
//! let (dir_a, dir_b) = (tempfile::tempdir()?, tempfile::tempdir()?);
//! let (a, b) = (Store::open(dir_a.path())?, Store::open(dir_b.path())?);
//! let id = a.create_permit(NewPermit {
//!     title: "Replace pump seal".into(),
//!     location: "Pump house 2".into(),
//!     work_type: "mechanical".into(),
//!     safety_checklist: vec!["isolation confirmed".into(), "area barriered".into()],
//!     ..Default::default()
//! })?;
//! // the tablet gets the permit (over sync, or in a bundle)
//! b.apply_changes(id, a.changes_since(id, &[])?)?;
//!
//! // offline, apart: the issuer's node adds PPE and submits the permit;
//! // the tablet adds other PPE and ticks a checklist item
//! a.edit(id, Edit::AddItem { field: "ppe_requirements".into(), item: "gloves".into() })?;
//! a.edit(id, Edit::SetStatus("submitted".into()))?;
//! b.edit(id, Edit::AddItem { field: "ppe_requirements".into(), item: "goggles".into() })?;
//! let tick = |ticked| Edit::Tick {
//!     field: "safety_checklist".into(),
//!     item: "isolation confirmed".into(),
//!     ticked,
//! };
//! b.edit(id, tick(true))?;
//! // a local edit the policies would reject is refused, nothing written
//! assert!(b.edit(id, Edit::SetStatus("active".into())).is_err());
//!
//! // merge both ways
//! b.apply_changes(id, a.changes_since(id, &[])?)?;
//! a.apply_changes(id, b.changes_since(id, &[])?)?;
//!
//! let (va, vb) = (a.view(id)?, b.view(id)?);
//! assert_eq!(va.to_json_string(), vb.to_json_string()); // converged
//! assert_eq!(va.str_field("status"), Some("submitted"));
//! // set-merge: both additions survive
//! assert_eq!(va.fields["ppe_requirements"], serde_json::json!(["gloves", "goggles"]));
//! // true-wins checklist
//! assert_eq!(va.fields["safety_checklist"]["isolation confirmed"], true);
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
