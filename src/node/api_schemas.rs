//! What the handlers' OpenAPI descriptions share: the error answers they
//! name ([`UnknownEntity`], [`Refused`], ...), the entity id of a path
//! ([`IdPath`]), and the schemas of the view's types ([`View`], [`Conflict`],
//! [`Rejection`], [`Violation`], [`OpRecord`], [`Author`], [`Act`],
//! [`Authorship`]), which live in
//! [`crate::view`] and serialize by hand-written serde attributes there: each
//! is described here by a struct of the same JSON shape, and the view type's
//! `ToSchema` answers with that struct's schema. The tests below render real
//! views and check every key against these schemas, so a field added to the
//! view without being described here fails them.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde_json::{Map, Value};
use utoipa::openapi::schema::Schema;
use utoipa::openapi::{ContentBuilder, Ref, RefOr, Response, ResponseBuilder};
use utoipa::{IntoParams, IntoResponses, PartialSchema, ToSchema};

use crate::view::{Act, Author, Authorship, Conflict, OpRecord, Rejection, View, Violation};

/// An error answer (body [`ErrorBody`](super::api_error::ErrorBody)) described by `description`.
pub(super) fn error_response(description: &str) -> RefOr<Response> {
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("ErrorBody")))
                .build(),
        )
        .build()
        .into()
}

/// `(status, description)` pairs as error answers.
fn answers(list: &[(&str, &str)]) -> BTreeMap<String, RefOr<Response>> {
    list.iter()
        .map(|(status, description)| (status.to_string(), error_response(description)))
        .collect()
}

/// 404 for an entity the tenant does not hold, for `responses(...)`.
pub(super) struct UnknownEntity;

impl IntoResponses for UnknownEntity {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        answers(&[(
            "404",
            "`unknown_entity`: no such entity in the tenant (another tenant's answers alike)",
        )])
    }
}

/// 422 for a write the policies or interlocks refuse, for `responses(...)`.
pub(super) struct Refused;

impl IntoResponses for Refused {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        answers(&[(
            "422",
            "`rejected` (with `reason`: the policy's code, or `interlock`): the write is \
             refused and nothing changed; `untyped_document` for a document without a valid type",
        )])
    }
}

/// 413 for a write over a store limit, for `responses(...)`.
pub(super) struct TooLarge;

impl IntoResponses for TooLarge {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        answers(&[(
            "413",
            "`limit_exceeded`: the write would pass a document limit",
        )])
    }
}

/// The entity id in a route's path.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)] // only its description is used
pub(super) struct IdPath {
    /// The entity's id (a UUID).
    id: uuid::Uuid,
}

/// The policy view of one entity: a pure function of its document's changes.
/// Two replicas holding the same changes render byte-identical JSON.
#[derive(ToSchema)]
#[allow(dead_code)] // only its schema is used
struct ViewDoc {
    /// The entity id.
    id: String,
    /// The entity type (`permit`, `isolation_point`, `closeout`), or `null`
    /// for a document without a valid `type`.
    #[serde(rename = "type")]
    entity_type: Option<String>,
    /// The document's heads (hex), sorted.
    heads: Vec<String>,
    /// The number of changes the document holds (the classic API's
    /// `client_version`).
    version: u64,
    /// The fields as the policies resolve them (`title`, `status`,
    /// `gas_readings`, ...).
    #[schema(value_type = Object)]
    fields: Map<String, Value>,
    /// Concurrent values of last-writer-wins fields.
    conflicts: Vec<ConflictDoc>,
    /// Operations the policies turned into no-ops.
    rejected: Vec<RejectionDoc>,
    /// Rules that do not hold (alarms once merged).
    violations: Vec<ViolationDoc>,
    /// Who created the entity and, for a permit, who made the workflow
    /// moves its status rests on (verified when an attestation vouches).
    authorship: AuthorshipDoc,
}

/// Who verifiably made a change (history's `author`).
#[derive(ToSchema)]
#[allow(dead_code)]
struct AuthorDoc {
    /// The certificate's device (`signed`) or the device a relay attested
    /// (`relay_attested`); `null` when unverified, unless a refused
    /// certificate signed it (then that certificate's device).
    device: Option<String>,
    /// The person the certificate names, if any.
    person: Option<String>,
    /// `signed`, `relay_attested` or `unverified`.
    verification: String,
    /// For an unverified change signed by a certificate that does not count:
    /// why (`revoked`, `expired`, `not yet valid`).
    #[serde(skip_serializing_if = "Option::is_none")]
    refused: Option<String>,
}

/// Who made one act of an entity's life, and with which change.
#[derive(ToSchema)]
#[allow(dead_code)]
struct ActDoc {
    /// The device (verified, or when unverified the device written or claimed).
    device: Option<String>,
    /// The person the certificate names, if any.
    person: Option<String>,
    /// `signed`, `relay_attested` or `unverified`.
    verification: String,
    /// Why a certificate that signed it does not count, when one did.
    #[serde(skip_serializing_if = "Option::is_none")]
    refused: Option<String>,
    /// The change that did it (hex).
    change: String,
    /// When, by its author's clock (Unix seconds).
    time: i64,
}

/// The view's `authorship`.
#[derive(ToSchema)]
#[allow(dead_code)]
struct AuthorshipDoc {
    /// The change that wrote the entity's `type` (`null` for a document
    /// without one).
    created_by: Option<ActDoc>,
    /// A permit's latest `-> submitted` on the path to its status.
    #[serde(skip_serializing_if = "Option::is_none")]
    submitted_by: Option<ActDoc>,
    /// A permit's latest `-> approved` on the path to its status.
    #[serde(skip_serializing_if = "Option::is_none")]
    approved_by: Option<ActDoc>,
    /// A permit's first `-> active` (its issue) on the path to its status.
    #[serde(skip_serializing_if = "Option::is_none")]
    activated_by: Option<ActDoc>,
}

/// Concurrent values of a last-writer-wins field.
#[derive(ToSchema)]
#[allow(dead_code)]
struct ConflictDoc {
    /// The field.
    field: String,
    /// Every concurrent value, in op order (the winner last).
    values: Vec<Value>,
    /// The value shown (Automerge's winner).
    winner: Value,
    /// How to settle it (`last_write_wins`, `text_replace`, `immutable_first_write`).
    merge_hint: String,
}

/// An operation the view rejected.
#[derive(ToSchema)]
#[allow(dead_code)]
struct RejectionDoc {
    /// Hex hash of the change that carried the operation.
    change: String,
    /// Hex actor id of the change's author.
    actor: String,
    /// The field path, e.g. `status` or `safety_checklist.gas_test`.
    field: String,
    /// The value written (`null` for a delete).
    value: Value,
    /// The reason code (`invalid_transition`, `not_authorized`, ...).
    reason: String,
    /// A human-readable detail.
    detail: String,
}

/// A rule that does not hold.
#[derive(ToSchema)]
#[allow(dead_code)]
struct ViolationDoc {
    /// The rule's code (`isolation_not_verified`, `closeout_missing`,
    /// `gas_reading_out_of_range`, `missing_type`).
    rule: String,
    /// What is wrong, for a person.
    detail: String,
}

/// One write of a change.
#[derive(ToSchema)]
#[allow(dead_code)]
struct OpRecordDoc {
    /// The field's path.
    field: String,
    /// `set`, `delete` or `edit_text`.
    action: String,
    /// The value written.
    value: Value,
    /// The view's reason code when it turned the write into a no-op.
    #[serde(skip_serializing_if = "Option::is_none")]
    rejected: Option<String>,
}

/// `ToSchema` for a view type, answered by its description struct.
macro_rules! described_by {
    ($ty:ty, $doc:ty, $name:literal) => {
        impl PartialSchema for $ty {
            fn schema() -> RefOr<Schema> {
                <$doc as PartialSchema>::schema()
            }
        }

        impl ToSchema for $ty {
            fn name() -> Cow<'static, str> {
                Cow::Borrowed($name)
            }

            fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
                <$doc as ToSchema>::schemas(schemas);
            }
        }
    };
}

described_by!(View, ViewDoc, "View");
described_by!(Conflict, ConflictDoc, "Conflict");
described_by!(Rejection, RejectionDoc, "Rejection");
described_by!(Violation, ViolationDoc, "Violation");
described_by!(OpRecord, OpRecordDoc, "OpRecord");
described_by!(Author, AuthorDoc, "Author");
described_by!(Act, ActDoc, "Act");
described_by!(Authorship, AuthorshipDoc, "Authorship");

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use utoipa::openapi::schema::{Object, Schema};
    use utoipa::openapi::RefOr;
    use utoipa::ToSchema;

    use super::*;
    use crate::store::Store;
    use crate::write::{Edit, NewPermit};

    /// The property names of `T`'s schema, and its nested schemas by name.
    fn properties<T: ToSchema>() -> BTreeSet<String> {
        match T::schema() {
            RefOr::T(Schema::Object(Object { properties, .. })) => {
                properties.keys().cloned().collect()
            }
            _ => panic!("{} is not an object schema", T::name()),
        }
    }

    fn keys(value: &Value) -> BTreeSet<String> {
        value
            .as_object()
            .expect("an object")
            .keys()
            .cloned()
            .collect()
    }

    #[test]
    fn a_rendered_view_has_exactly_the_described_keys() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("store");
        let id = store
            .create_permit(NewPermit {
                title: "Replace pump seal".into(),
                ..Default::default()
            })
            .expect("create");
        store
            .edit(id, Edit::SetStatus("closed".into()))
            .expect_err("draft -> closed is refused");
        let view = serde_json::to_value(store.view(id).expect("view")).expect("json");
        assert_eq!(keys(&view), properties::<View>());
        assert_eq!(View::name(), "View");
        for (name, rendered) in [
            (
                "Conflict",
                serde_json::to_value(Conflict {
                    field: "title".into(),
                    values: vec![],
                    winner: Value::Null,
                    merge_hint: "last_write_wins".into(),
                }),
            ),
            (
                "Violation",
                serde_json::to_value(Violation {
                    rule: "closeout_missing".into(),
                    detail: String::new(),
                }),
            ),
        ] {
            let rendered = rendered.expect("json");
            let described = match name {
                "Conflict" => properties::<Conflict>(),
                _ => properties::<Violation>(),
            };
            assert_eq!(keys(&rendered), described, "{name}");
        }
        let rejection = Rejection {
            change: String::new(),
            actor: String::new(),
            field: "status".into(),
            value: Value::Null,
            reason: "invalid_transition".into(),
            detail: String::new(),
            kind: None,
            op_index: 0,
        };
        let rendered = serde_json::to_value(rejection).expect("json");
        assert_eq!(keys(&rendered), properties::<Rejection>());
        let op = OpRecord {
            field: "title".into(),
            action: "set",
            value: Value::Null,
            rejected: Some("invalid_transition".into()),
        };
        let rendered = serde_json::to_value(op).expect("json");
        assert_eq!(keys(&rendered), properties::<OpRecord>());
        let act = Act {
            device: Some("tablet-3".into()),
            person: Some("J. Smith".into()),
            verification: "unverified".into(),
            refused: Some("revoked".into()),
            change: String::new(),
            time: 0,
        };
        let rendered = serde_json::to_value(&act).expect("json");
        assert_eq!(keys(&rendered), properties::<Act>());
        let author = Author {
            device: None,
            person: None,
            verification: "unverified".into(),
            refused: Some("expired".into()),
        };
        let rendered = serde_json::to_value(author).expect("json");
        assert_eq!(keys(&rendered), properties::<Author>());
        let all = Authorship {
            created_by: Some(act.clone()),
            submitted_by: Some(act.clone()),
            approved_by: Some(act.clone()),
            activated_by: Some(act),
        };
        let rendered = serde_json::to_value(all).expect("json");
        assert_eq!(keys(&rendered), properties::<Authorship>());
    }
}
