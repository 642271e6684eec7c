use super::EntityType;

/// The kind of scalar an immutable or append-only field holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScalarKind {
    /// A string (scalar or Automerge Text, read as of its creating change).
    String,
    /// A UUID string (for references such as `permit_id`).
    Uuid,
    /// One of the entity type names.
    EntityType,
    /// Milliseconds since the Unix epoch: a timestamp, int, uint or f64.
    Timestamp,
    /// Any number: int, uint, f64 (or a counter / timestamp read as a number).
    Number,
}

impl ScalarKind {
    /// A short name for error messages.
    pub fn name(self) -> &'static str {
        match self {
            ScalarKind::String => "string",
            ScalarKind::Uuid => "uuid string",
            ScalarKind::EntityType => "entity type",
            ScalarKind::Timestamp => "timestamp",
            ScalarKind::Number => "number",
        }
    }
}

/// One field of an append-only entry (a gas reading, a photo).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EntryField {
    /// The key inside the entry map.
    pub name: &'static str,
    /// Its type.
    pub kind: ScalarKind,
}

/// The fields of the entries of an append-only map.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EntrySchema {
    /// The entry's fields; all of them are written when the entry is created.
    pub fields: &'static [EntryField],
}

impl EntrySchema {
    /// The field called `name`, if the schema has one.
    pub fn field(&self, name: &str) -> Option<EntryField> {
        self.fields.iter().copied().find(|f| f.name == name)
    }
}

const fn f(name: &'static str, kind: ScalarKind) -> EntryField {
    EntryField { name, kind }
}

/// A gas reading: `{gas, value, unit, min, max, taken_at, taken_by}`.
pub const GAS_READING: EntrySchema = EntrySchema {
    fields: &[
        f("gas", ScalarKind::String),
        f("value", ScalarKind::Number),
        f("unit", ScalarKind::String),
        f("min", ScalarKind::Number),
        f("max", ScalarKind::Number),
        f("taken_at", ScalarKind::Timestamp),
        f("taken_by", ScalarKind::String),
    ],
};

/// Photo metadata: `{sha256, mime, size, caption, taken_at}`.
pub const PHOTO: EntrySchema = EntrySchema {
    fields: &[
        f("sha256", ScalarKind::String),
        f("mime", ScalarKind::String),
        f("size", ScalarKind::Number),
        f("caption", ScalarKind::String),
        f("taken_at", ScalarKind::Timestamp),
    ],
};

/// The policy that governs one root field of an entity document.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldPolicy {
    /// Written once, at creation; any later write is a no-op.
    Immutable(ScalarKind),
    /// A string; last writer wins, concurrent values surface as a conflict.
    LastWriterWins,
    /// An Automerge Text object, merged character by character.
    Text,
    /// A map `item -> true`: an add-wins set.
    SetMerge,
    /// A map `item -> bool`: concurrent values are OR-ed; items cannot be removed.
    TrueWinsMap,
    /// A boolean; concurrent values are OR-ed.
    TrueWins,
    /// The permit workflow status, with its transitions, guard and precedence.
    Workflow,
    /// The isolation point status, which never goes down.
    Monotonic,
    /// A map `uuid -> entry`, entries created once and never changed.
    AppendOnly(EntrySchema),
}

/// The schema of one entity type: which root fields it has and their policies.
#[derive(Clone, Copy, Debug)]
pub struct Schema {
    entity_type: EntityType,
    fields: &'static [(&'static str, FieldPolicy)],
}

const COMMON: [(&str, FieldPolicy); 4] = [
    ("type", FieldPolicy::Immutable(ScalarKind::EntityType)),
    ("created_at", FieldPolicy::Immutable(ScalarKind::Timestamp)),
    ("created_by", FieldPolicy::Immutable(ScalarKind::String)),
    ("deleted", FieldPolicy::TrueWins),
];

const PERMIT: [(&str, FieldPolicy); 13] = [
    COMMON[0],
    COMMON[1],
    COMMON[2],
    COMMON[3],
    ("title", FieldPolicy::LastWriterWins),
    ("location", FieldPolicy::LastWriterWins),
    ("work_type", FieldPolicy::LastWriterWins),
    ("description", FieldPolicy::Text),
    ("ppe_requirements", FieldPolicy::SetMerge),
    ("safety_checklist", FieldPolicy::TrueWinsMap),
    ("status", FieldPolicy::Workflow),
    ("gas_readings", FieldPolicy::AppendOnly(GAS_READING)),
    ("photos", FieldPolicy::AppendOnly(PHOTO)),
];

const ISOLATION_POINT: [(&str, FieldPolicy); 8] = [
    COMMON[0],
    COMMON[1],
    COMMON[2],
    COMMON[3],
    ("permit_id", FieldPolicy::Immutable(ScalarKind::Uuid)),
    ("description", FieldPolicy::Text),
    ("lock_ids", FieldPolicy::SetMerge),
    ("status", FieldPolicy::Monotonic),
];

const CLOSEOUT: [(&str, FieldPolicy); 8] = [
    COMMON[0],
    COMMON[1],
    COMMON[2],
    COMMON[3],
    ("permit_id", FieldPolicy::Immutable(ScalarKind::Uuid)),
    ("checklist", FieldPolicy::TrueWinsMap),
    ("completed", FieldPolicy::TrueWins),
    ("notes", FieldPolicy::Text),
];

impl Schema {
    /// The schema of `entity_type`.
    pub fn of(entity_type: EntityType) -> Schema {
        let fields: &'static [(&'static str, FieldPolicy)] = match entity_type {
            EntityType::Permit => &PERMIT,
            EntityType::IsolationPoint => &ISOLATION_POINT,
            EntityType::Closeout => &CLOSEOUT,
        };
        Schema {
            entity_type,
            fields,
        }
    }

    /// The entity type this schema describes.
    pub fn entity_type(&self) -> EntityType {
        self.entity_type
    }

    /// The policy of root field `name`, or `None` for a field the schema does not know
    /// (such fields are kept by Automerge but not shown in the view).
    pub fn policy(&self, name: &str) -> Option<FieldPolicy> {
        self.fields
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, p)| *p)
    }

    /// Every root field with its policy, in schema order.
    pub fn fields(&self) -> impl Iterator<Item = (&'static str, FieldPolicy)> {
        self.fields.iter().copied()
    }
}
