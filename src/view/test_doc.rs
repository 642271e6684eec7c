//! A raw Automerge document for the view's tests: writes that bypass the
//! write API, the way a foreign or buggy client makes them.

use automerge::transaction::Transactable;
use automerge::{ActorId, AutomergeError, ObjId, ObjType, ReadDoc, ScalarValue, ROOT};

use crate::document::EntityDoc;
use crate::model::EntityId;
use crate::view::{CrossRefs, View};

pub(super) fn actor(n: u8) -> ActorId {
    ActorId::from(vec![n; 16])
}

pub(super) struct Doc {
    pub(super) inner: automerge::Automerge,
}

impl Doc {
    pub(super) fn new(n: u8, ty: &str) -> Doc {
        let mut inner = automerge::Automerge::new().with_actor(actor(n));
        inner
            .transact::<_, _, AutomergeError>(|tx| {
                tx.put(ROOT, "type", ty)?;
                tx.put(ROOT, "created_at", ScalarValue::Timestamp(1))?;
                tx.put(ROOT, "created_by", "dev")?;
                if ty == "permit" {
                    tx.put(ROOT, "status", "draft")?;
                    tx.put_object(ROOT, "safety_checklist", ObjType::Map)?;
                    tx.put_object(ROOT, "gas_readings", ObjType::Map)?;
                    tx.put_object(ROOT, "ppe_requirements", ObjType::Map)?;
                    tx.put(ROOT, "title", "t")?;
                } else if ty == "closeout" {
                    tx.put(ROOT, "permit_id", "00000000-0000-0000-0000-000000000001")?;
                    let list = tx.put_object(ROOT, "checklist", ObjType::Map)?;
                    tx.put(&list, "a", false)?;
                    tx.put(ROOT, "completed", false)?;
                } else {
                    tx.put(ROOT, "permit_id", "00000000-0000-0000-0000-000000000001")?;
                    tx.put_object(ROOT, "lock_ids", ObjType::Map)?;
                }
                Ok(())
            })
            .expect("create");
        Doc { inner }
    }

    pub(super) fn fork(&self, n: u8) -> Doc {
        Doc {
            inner: self.inner.fork().with_actor(actor(n)),
        }
    }

    pub(super) fn put(&mut self, key: &str, value: impl Into<ScalarValue>) {
        let v = value.into();
        self.inner
            .transact::<_, _, AutomergeError>(|tx| tx.put(ROOT, key, v.clone()))
            .expect("put");
    }

    pub(super) fn obj(&self, key: &str) -> ObjId {
        match self.inner.get(ROOT, key).expect("get") {
            Some((_, id)) => id,
            None => panic!("no {key}"),
        }
    }

    pub(super) fn put_in(&mut self, map: &str, key: &str, value: impl Into<ScalarValue>) {
        let obj = self.obj(map);
        let v = value.into();
        self.inner
            .transact::<_, _, AutomergeError>(|tx| tx.put(&obj, key, v.clone()))
            .expect("put_in");
    }

    pub(super) fn delete_in(&mut self, map: &str, key: &str) {
        let obj = self.obj(map);
        self.inner
            .transact::<_, _, AutomergeError>(|tx| tx.delete(&obj, key))
            .expect("delete_in");
    }

    pub(super) fn reading(&mut self, id: &str, gas: &str, value: f64, taken_at: i64) {
        let obj = self.obj("gas_readings");
        self.inner
            .transact::<_, _, AutomergeError>(|tx| {
                let r = tx.put_object(&obj, id, ObjType::Map)?;
                tx.put(&r, "gas", gas)?;
                tx.put(&r, "value", value)?;
                tx.put(&r, "min", 0.0)?;
                tx.put(&r, "max", 10.0)?;
                tx.put(&r, "taken_at", ScalarValue::Timestamp(taken_at))?;
                Ok(())
            })
            .expect("reading");
    }

    pub(super) fn merge(&mut self, other: &Doc) {
        let mut o = other.inner.fork();
        self.inner.merge(&mut o).expect("merge");
    }

    /// Assert that the view built incrementally (change by change, in causal
    /// order and in reverse order) equals the view built from a full load.
    pub(super) fn assert_incremental_matches(&self) {
        let full = self.view().to_json_string();
        let changes = self.inner.get_changes(&[]);
        let fresh = || EntityDoc::new(EntityId::from_bytes([7; 16]), actor(98));
        let mut forward = fresh();
        for c in &changes {
            forward.apply_changes(vec![c.clone()]).expect("apply");
            // read the view after every change, so each step is incremental
            let _ = forward.view(&CrossRefs::default());
        }
        assert_eq!(forward.view(&CrossRefs::default()).to_json_string(), full);
        let mut backward = fresh();
        for c in changes.iter().rev() {
            backward.apply_changes(vec![c.clone()]).expect("apply");
            let _ = backward.view(&CrossRefs::default());
        }
        assert_eq!(backward.view(&CrossRefs::default()).to_json_string(), full);
    }

    pub(super) fn view(&self) -> View {
        let chunks = self.inner.save();
        EntityDoc::load(EntityId::from_bytes([7; 16]), actor(99), &[&chunks])
            .expect("load")
            .view(&CrossRefs::default())
    }
}

pub(super) fn field<'a>(v: &'a View, name: &str) -> &'a serde_json::Value {
    &v.fields[name]
}

pub(super) fn reasons(v: &View) -> Vec<(String, String)> {
    v.rejected
        .iter()
        .map(|r| (r.field.clone(), r.reason.clone()))
        .collect()
}
