//! Two devices edit the same permit while apart, then merge by carrying bundle
//! files. Run: `cargo run --example offline_merge`
//!
//! - a title conflict (both rename the permit): last writer wins, surfaced in `conflicts`;
//! - PPE added on both: set-merge keeps both;
//! - a checklist item ticked on one device and left unticked on the other: true wins;
//! - the isolation status moved on both: the highest rank wins;
//! - a hand-crafted invalid change (status `draft -> active` written with raw
//!   Automerge, bypassing the API): a no-op, listed in `rejected`.

use automerge::transaction::Transactable;
use automerge::{ActorId, Automerge, AutomergeError, ROOT};
use permitsync::bundle;
use permitsync::store::{Store, StoreOptions};
use permitsync::write::{Edit, NewIsolationPoint, NewPermit};

fn open(dir: &std::path::Path, device: &str) -> anyhow::Result<Store> {
    Ok(Store::open_with(
        dir,
        StoreOptions {
            device: Some(device.into()),
            ..Default::default()
        },
    )?)
}

fn main() -> anyhow::Result<()> {
    let (dir_a, dir_b) = (tempfile::tempdir()?, tempfile::tempdir()?);
    let a = open(dir_a.path(), "tablet-a")?;
    let b = open(dir_b.path(), "tablet-b")?;

    // Device A creates the permit and an isolation point; B receives them by file.
    let permit = a.create_permit(NewPermit {
        title: "Replace pump seal".into(),
        location: "Pump house 2".into(),
        work_type: "mechanical".into(),
        description: "Replace the mechanical seal on P-201".into(),
        ppe_requirements: vec!["helmet".into()],
        safety_checklist: vec!["area barricaded".into()],
        ..Default::default()
    })?;
    let valve = a.create_isolation_point(NewIsolationPoint {
        id: None,
        permit_id: permit,
        description: "Suction valve V-12".into(),
        lock_ids: vec!["LOCK-7".into()],
    })?;
    bundle::import(&b, &bundle::export(&a, None, 0)?)?;

    // Apart: both edit.
    let title = |t: &str| Edit::SetField {
        field: "title".into(),
        value: t.into(),
    };
    let ppe = |p: &str| Edit::AddItem {
        field: "ppe_requirements".into(),
        item: p.into(),
    };
    let tick = |item: &str, ticked: bool| Edit::Tick {
        field: "safety_checklist".into(),
        item: item.into(),
        ticked,
    };
    a.edit(permit, title("Replace pump seal P-201"))?;
    a.edit(permit, ppe("gloves"))?;
    a.edit(permit, tick("gas test done", true))?;
    a.edit(valve, Edit::SetStatus("isolated".into()))?;

    b.edit(permit, title("Pump seal replacement (night shift)"))?;
    b.edit(permit, ppe("face shield"))?;
    b.edit(permit, tick("gas test done", false))?;
    b.edit(valve, Edit::SetStatus("verified".into()))?;

    // A buggy client on B writes `active` straight into a draft permit.
    let mut raw = Automerge::load(&b.save_doc(permit)?)?.with_actor(ActorId::random());
    let heads = raw.get_heads();
    raw.transact::<_, _, AutomergeError>(|tx| tx.put(ROOT, "status", "active"))
        .map_err(|f| f.error)?;
    b.apply_changes(permit, raw.get_changes(&heads))?;

    // Back in range of each other (by file): exchange bundles both ways.
    let report_b = bundle::import(&b, &bundle::export(&a, None, 0)?)?;
    let report_a = bundle::import(&a, &bundle::export(&b, None, 0)?)?;
    println!("A received {report_a:?}\nB received {report_b:?}\n");

    let (view_a, view_b) = (a.view(permit)?, b.view(permit)?);
    println!(
        "merged permit:\n{}\n",
        serde_json::to_string_pretty(&view_a)?
    );
    println!(
        "merged isolation point:\n{}\n",
        serde_json::to_string_pretty(&a.view(valve)?)?
    );
    anyhow::ensure!(
        view_a.to_json_string() == view_b.to_json_string(),
        "the devices disagree"
    );
    println!("both devices show byte-identical views");
    Ok(())
}
