//! `POST /v1/entities`: create a permit, isolation point or closeout with a
//! client-generated id (or a fresh one). Its body is internally tagged by
//! `type`, each kind refusing unknown fields; its OpenAPI schema is built
//! here from the kinds' own schemas (a `oneOf` of objects that each carry
//! their `type`), because the derived one (`allOf` of a closed object and the
//! tag) would describe no body at all.

use axum::extract::rejection::JsonRejection;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Schema, Type};
use utoipa::openapi::RefOr;
use utoipa::{PartialSchema, ToSchema};

use super::api_error::{ApiError, ApiResult, ErrorBody};
use super::api_schemas::{Refused, TooLarge};
use super::extract::{body, Writer};
use super::state::Shared;
use super::store_work::{author, blocking, changed, visible_summary};
use crate::model::{EntityId, EntityType};
use crate::view::View;
use crate::write::{NewCloseout, NewIsolationPoint, NewPermit};

/// A new permit, isolation point or closeout (`type` says which).
#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(super) enum CreateBody {
    Permit(CreatePermit),
    IsolationPoint(CreateIsolationPoint),
    Closeout(CreateCloseout),
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct CreatePermit {
    id: Option<EntityId>,
    #[schema(min_length = 1)]
    title: String,
    #[serde(default)]
    location: String,
    #[serde(default)]
    work_type: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    ppe_requirements: Vec<String>,
    #[serde(default)]
    safety_checklist: Vec<String>,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct CreateIsolationPoint {
    id: Option<EntityId>,
    permit_id: EntityId,
    #[serde(default)]
    description: String,
    #[serde(default)]
    lock_ids: Vec<String>,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct CreateCloseout {
    id: Option<EntityId>,
    permit_id: EntityId,
    #[serde(default)]
    checklist: Vec<String>,
    #[serde(default)]
    notes: String,
}

impl CreateBody {
    fn id(&self) -> Option<EntityId> {
        match self {
            CreateBody::Permit(p) => p.id,
            CreateBody::IsolationPoint(i) => i.id,
            CreateBody::Closeout(c) => c.id,
        }
    }

    fn entity_type(&self) -> EntityType {
        match self {
            CreateBody::Permit(_) => EntityType::Permit,
            CreateBody::IsolationPoint(_) => EntityType::IsolationPoint,
            CreateBody::Closeout(_) => EntityType::Closeout,
        }
    }

    fn permit_id(&self) -> Option<EntityId> {
        match self {
            CreateBody::Permit(_) => None,
            CreateBody::IsolationPoint(i) => Some(i.permit_id),
            CreateBody::Closeout(c) => Some(c.permit_id),
        }
    }
}

/// Create an entity with a client-generated id (or a fresh one), in the
/// caller's tenant's id space. An id the tenant already holds answers 409
/// `already_exists`, except a retry by the device that created it, which
/// answers 200 with the entity. Another tenant's id is not taken here: the
/// create makes this tenant's own document of that id, and answers exactly
/// as for an unknown id.
#[utoipa::path(post, path = "/v1/entities", tag = "entities", request_body = CreateBody,
    responses(
        (status = 201, description = "created: the entity's view", body = View),
        (status = 200, description = "a retry of this device's own create: the entity's view", body = View),
        (status = 404, description = "`unknown_entity`: the parent permit is not the tenant's", body = ErrorBody),
        (status = 409, description = "`already_exists`: the id is taken", body = ErrorBody),
        Refused, TooLarge))]
pub(super) async fn create_entity(
    State(state): State<Shared>,
    Writer(access): Writer,
    new: Result<Json<CreateBody>, JsonRejection>,
) -> ApiResult<(StatusCode, Json<View>)> {
    let new = body(new)?;
    let tenant = access.tenant.clone();
    let writer = access.clone();
    let view = blocking(&state, move |s| {
        let store = &author(s, &writer);
        let id = new.id().unwrap_or_else(EntityId::new_random);
        if let Some(permit) = new.permit_id() {
            // the parent must be the tenant's (unknown and foreign answer alike)
            visible_summary(s, permit, &writer)?;
        }
        let taken = || {
            ApiError::new(
                StatusCode::CONFLICT,
                "already_exists",
                format!("an entity with id {id} already exists"),
            )
        };
        if store.summary(id)?.is_some() {
            // a retry of this device's own create (its first answer was lost, or
            // its flush failed): make sure it is durable and answer 200 with it
            let own = store.created_by(id, &tenant, new.entity_type(), store.author_device())?;
            if !own {
                return Err(taken());
            }
            store.flush()?;
            return Ok((StatusCode::OK, store.view(id)?));
        }
        if !store.claim(id, &tenant)? {
            return Err(taken());
        }
        match new {
            CreateBody::Permit(p) => store.create_permit(NewPermit {
                id: Some(id),
                title: p.title,
                location: p.location,
                work_type: p.work_type,
                description: p.description,
                ppe_requirements: p.ppe_requirements,
                safety_checklist: p.safety_checklist,
            })?,
            CreateBody::IsolationPoint(i) => store.create_isolation_point(NewIsolationPoint {
                id: Some(id),
                permit_id: i.permit_id,
                description: i.description,
                lock_ids: i.lock_ids,
            })?,
            CreateBody::Closeout(c) => store.create_closeout(NewCloseout {
                id: Some(id),
                permit_id: c.permit_id,
                checklist: c.checklist,
                notes: c.notes,
            })?,
        };
        changed(s, &writer, id);
        Ok((StatusCode::CREATED, store.view(id)?))
    })
    .await?;
    let (status, view) = view;
    tracing::info!(tenant = %access.tenant, device = %access.device, id = %view.id,
        r#type = ?view.entity_type, "entity created");
    Ok((status, Json(view)))
}

impl PartialSchema for CreateBody {
    fn schema() -> RefOr<Schema> {
        OneOfBuilder::new()
            .item(tagged::<CreatePermit>("permit"))
            .item(tagged::<CreateIsolationPoint>("isolation_point"))
            .item(tagged::<CreateCloseout>("closeout"))
            .description(Some(
                "A new permit, isolation point or closeout (`type` says which).",
            ))
            .into()
    }
}

impl ToSchema for CreateBody {
    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        <CreatePermit as ToSchema>::schemas(schemas);
        <CreateIsolationPoint as ToSchema>::schemas(schemas);
        <CreateCloseout as ToSchema>::schemas(schemas);
    }
}

/// `T`'s object schema with the property `type` fixed to `tag`, required.
fn tagged<T: PartialSchema>(tag: &str) -> Schema {
    let RefOr::T(Schema::Object(mut object)) = T::schema() else {
        unreachable!("a create body is a struct: an object schema");
    };
    let property = ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some([tag]))
        .build();
    object.properties.insert("type".into(), property.into());
    object.required.insert(0, "type".into());
    Schema::Object(object)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_of_body_is_a_closed_object_with_its_type() {
        let RefOr::T(Schema::OneOf(one_of)) = CreateBody::schema() else {
            panic!("a oneOf");
        };
        let json = serde_json::to_value(&one_of).expect("json");
        let kinds = json["oneOf"].as_array().expect("items");
        assert_eq!(kinds.len(), 3);
        for (kind, tag) in kinds.iter().zip(["permit", "isolation_point", "closeout"]) {
            assert_eq!(kind["properties"]["type"]["enum"][0], tag, "{kind}");
            assert_eq!(kind["additionalProperties"], false, "{kind}");
            assert_eq!(kind["required"][0], "type", "{kind}");
        }
        // and the body that schema describes is one the route takes
        let permit: CreateBody =
            serde_json::from_value(serde_json::json!({"type": "permit", "title": "t"}))
                .expect("parses");
        assert_eq!(permit.entity_type(), EntityType::Permit);
    }
}
