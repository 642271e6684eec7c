//! The REST API's OpenAPI 3.1 document, generated from the handlers'
//! `#[utoipa::path]` descriptions and their types' `ToSchema`, and served at
//! `GET /v1/openapi.json` (no token: it holds no data).
//!
//! Each handler names the answers particular to it; [`CommonAnswers`] adds
//! those every route shares, from the layers in front of the handlers: `503
//! busy` from the request guard (every route but `/healthz`), `401`, `403`
//! and `429` from the gate (every route that needs a token), `400` for
//! malformed parameters, and `400`, `408` and `415` for a JSON body. The
//! property test (`tests/openapi.rs`, schemathesis against a real node)
//! checks that no answer has a status the document does not list.

use std::sync::OnceLock;

use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use utoipa::openapi::link::LinkBuilder;
use utoipa::openapi::path::Operation;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::OpenApi as Document;
use utoipa::openapi::RefOr;
use utoipa::{Modify, OpenApi};

use super::api_error::ErrorBody;
use super::api_schemas::error_response;
use super::state::Shared;

/// Routes that need no token.
const OPEN: [&str; 4] = ["/healthz", "/readyz", "/metrics", "/v1/openapi.json"];

/// The classic API's batch route, also served with a trailing slash (as the
/// existing offline clients call it).
const CLASSIC_BATCH: &str = "/api/v1/ptw/sync-offline-data";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "permitsync",
        description = "The REST API of a permitsync node: the tenant's permits, isolation points \
                       and closeouts, their alarms and conflicts, photos, devices, and the classic \
                       sync API. Every route but `/healthz`, `/readyz`, `/metrics` and \
                       `/v1/openapi.json` needs a token: `Authorization: Bearer <token>` (or \
                       `?token=`). Errors are `{\"error\": code, \"detail\": text}`. See docs/api.md."
    ),
    paths(
        super::status_api::healthz,
        super::readiness::readyz,
        super::status_api::metrics,
        openapi_json,
        super::status_api::status,
        super::entity_api::list_entities,
        super::entity_create::create_entity,
        super::entity_api::get_entity,
        super::entity_api::patch_entity,
        super::entity_api::add_gas_reading,
        super::entity_api::conflicts,
        super::entity_listing::alarms,
        super::operator_api::resolve_conflict,
        super::operator_api::history,
        super::blob_api::put_blob,
        super::blob_api::get_blob,
        super::blob_api::add_photo,
        super::device_api::list_devices,
        super::device_api::delete_device,
        super::device_api::enable_device,
        super::classic_api::sync_offline_data,
        super::classic_api::pull,
        super::events::events,
        super::ws::sync_endpoint,
        super::admin_api::backup,
    ),
    components(schemas(ErrorBody)),
    security(("bearer" = []), ("query_token" = [])),
    modifiers(&Security, &CommonAnswers, &ClassicSlash, &CreatedLinks),
    tags(
        (name = "node", description = "health, readiness, metrics, status, live events"),
        (name = "entities", description = "permits, isolation points and closeouts"),
        (name = "operator", description = "settling conflicts, audit trails"),
        (name = "blobs", description = "photos"),
        (name = "devices", description = "the device registry"),
        (name = "classic", description = "the classic sync API for JSON offline clients (docs/classic-api.md)"),
        (name = "sync", description = "the CRDT sync WebSocket"),
        (name = "admin", description = "the operator's routes (the admin token, not a tenant's)"),
    )
)]
struct ApiDoc;

/// The document, as served (JSON).
pub fn openapi() -> serde_json::Value {
    let mut doc = ApiDoc::openapi();
    doc.info.version = env!("CARGO_PKG_VERSION").to_string();
    let mut json = serde_json::to_value(doc).unwrap_or_default();
    camel_case_links(&mut json);
    json
}

/// utoipa 5.5 serializes a link object's fields in snake case
/// (`operation_id`); OpenAPI names them in camel case (`operationId`), and
/// tools ignore a link without it.
fn camel_case_links(json: &mut serde_json::Value) {
    match json {
        serde_json::Value::Object(map) => {
            if let Some(serde_json::Value::Object(links)) = map.get_mut("links") {
                for link in links.values_mut() {
                    if let serde_json::Value::Object(link) = link {
                        for (from, to) in [
                            ("operation_id", "operationId"),
                            ("operation_ref", "operationRef"),
                            ("request_body", "requestBody"),
                        ] {
                            if let Some(v) = link.remove(from) {
                                link.insert(to.into(), v);
                            }
                        }
                    }
                }
            }
            map.values_mut().for_each(camel_case_links);
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(camel_case_links),
        _ => {}
    }
}

/// The route `GET /v1/openapi.json` (merged into the REST router).
pub(super) fn api_doc_routes() -> Router<Shared> {
    Router::new().route("/v1/openapi.json", get(openapi_json))
}

/// This document.
#[utoipa::path(get, path = "/v1/openapi.json", tag = "node", security(()),
    responses((status = 200, description = "the OpenAPI 3.1 document of this API",
        content_type = "application/json", body = Object)))]
async fn openapi_json() -> impl IntoResponse {
    static JSON: OnceLock<String> = OnceLock::new();
    let json = JSON.get_or_init(|| openapi().to_string());
    ([(header::CONTENT_TYPE, "application/json")], json.as_str())
}

/// The two ways to pass a token.
struct Security;

impl Modify for Security {
    fn modify(&self, doc: &mut Document) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        components.add_security_scheme(
            "query_token",
            SecurityScheme::ApiKey(ApiKey::Query(ApiKeyValue::new("token"))),
        );
    }
}

/// The answers every route shares (see the module's documentation).
struct CommonAnswers;

impl Modify for CommonAnswers {
    fn modify(&self, doc: &mut Document) {
        for (path, item) in doc.paths.paths.iter_mut() {
            let open = OPEN.contains(&path.as_str());
            let ops = [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
            ];
            for op in ops.into_iter().flatten() {
                add_common(op, path, open);
            }
        }
    }
}

fn add_common(op: &mut Operation, path: &str, open: bool) {
    let mut answers = Vec::new();
    if path != "/healthz" {
        answers.push((
            "503",
            "`busy`: too many requests in progress (`Retry-After`)",
        ));
    }
    if !open {
        answers.extend([
            ("401", "`unauthorized`: no token, or an unknown one"),
            (
                "403",
                "`read_only`: a write with a read-only token; `device_blocked`: the device was removed",
            ),
            (
                "429",
                "`rate_limited`: too many requests for the token; `auth_throttled`: too many \
                 failed authentications from the address (`Retry-After`)",
            ),
        ]);
    }
    if op.parameters.as_ref().is_some_and(|p| !p.is_empty()) {
        answers.push(("400", "`invalid_input`: a malformed parameter"));
    }
    let json_body = op
        .request_body
        .as_ref()
        .is_some_and(|b| b.content.contains_key("application/json"));
    if json_body {
        answers.extend([
            (
                "400",
                "`bad_json`: a body that is not the expected JSON; `invalid_input`",
            ),
            ("408", "`body_timeout`: the body did not arrive in time"),
            (
                "415",
                "`bad_json`: the body's `Content-Type` is not `application/json`",
            ),
        ]);
    }
    for (status, description) in answers {
        op.responses
            .responses
            .entry(status.to_string())
            .or_insert_with(|| error_response(description));
    }
}

/// The classic batch route with its trailing slash, described like the route
/// without it.
struct ClassicSlash;

impl Modify for ClassicSlash {
    fn modify(&self, doc: &mut Document) {
        if let Some(item) = doc.paths.paths.get(CLASSIC_BATCH).cloned() {
            let mut item = item;
            if let Some(op) = item.post.as_mut() {
                op.operation_id = op.operation_id.as_ref().map(|id| format!("{id}_slash"));
            }
            doc.paths.paths.insert(format!("{CLASSIC_BATCH}/"), item);
        }
    }
}

/// The operations that take the id of an entity `POST /v1/entities` made.
const ON_AN_ENTITY: [&str; 6] = [
    "get_entity",
    "patch_entity",
    "add_gas_reading",
    "add_photo",
    "history",
    "resolve_conflict",
];

/// Links from a created entity to the operations on it (clients, and the
/// property test's stateful phase, follow them).
struct CreatedLinks;

impl Modify for CreatedLinks {
    fn modify(&self, doc: &mut Document) {
        let Some(create) = doc
            .paths
            .paths
            .get_mut("/v1/entities")
            .and_then(|item| item.post.as_mut())
        else {
            return;
        };
        for status in ["200", "201"] {
            let Some(RefOr::T(response)) = create.responses.responses.get_mut(status) else {
                continue;
            };
            for op in ON_AN_ENTITY {
                let link = LinkBuilder::new()
                    .operation_id(op)
                    .parameter("id", "$response.body#/id")
                    .build();
                response.links.insert(op.to_string(), link.into());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_of_the_api_is_described() {
        let doc = openapi();
        let paths = doc["paths"].as_object().expect("paths");
        for route in [
            "/healthz",
            "/readyz",
            "/metrics",
            "/v1/openapi.json",
            "/v1/status",
            "/v1/entities",
            "/v1/entities/{id}",
            "/v1/entities/{id}/gas-readings",
            "/v1/entities/{id}/resolve",
            "/v1/entities/{id}/history",
            "/v1/entities/{id}/photos",
            "/v1/conflicts",
            "/v1/alarms",
            "/v1/blobs/{sha256}",
            "/v1/devices",
            "/v1/devices/{id}",
            "/v1/devices/{id}/enable",
            "/v1/events",
            "/v1/sync",
            "/api/v1/ptw/sync-offline-data",
            "/api/v1/ptw/sync-offline-data/",
            "/api/v1/sync/changes",
            "/v1/admin/backup",
        ] {
            assert!(paths.contains_key(route), "{route} is not described");
        }
    }

    fn statuses(op: &serde_json::Value) -> Vec<&str> {
        let responses = op["responses"].as_object().expect("responses");
        responses.keys().map(String::as_str).collect()
    }

    #[test]
    fn routes_with_a_token_list_the_gates_answers_and_open_ones_do_not() {
        let doc = openapi();
        let status = statuses(&doc["paths"]["/v1/status"]["get"]);
        for code in ["200", "401", "403", "429", "503"] {
            assert!(status.contains(&code), "{code}: {status:?}");
        }
        assert_eq!(statuses(&doc["paths"]["/healthz"]["get"]), ["200"]);
        let create = statuses(&doc["paths"]["/v1/entities"]["post"]);
        for code in ["201", "200", "400", "408", "415", "409", "422"] {
            assert!(create.contains(&code), "{code}: {create:?}");
        }
        let schemas = &doc["components"]["schemas"];
        assert!(
            schemas.get("ErrorBody").is_some(),
            "the error schema is a component"
        );
        assert!(
            schemas.get("View").is_some(),
            "the view schema is a component"
        );
    }

    #[test]
    fn a_created_entity_links_to_the_operations_on_it_in_camel_case() {
        let doc = openapi();
        let links = &doc["paths"]["/v1/entities"]["post"]["responses"]["201"]["links"];
        let mut operation_ids = Vec::new();
        for op in ON_AN_ENTITY {
            let link = &links[op];
            assert_eq!(link["operationId"], op, "{link}");
            assert_eq!(link["parameters"]["id"], "$response.body#/id", "{link}");
            assert!(link.get("operation_id").is_none(), "{link}");
            operation_ids.push(op);
        }
        // every link names an operation of the document
        let paths = doc["paths"].as_object().expect("paths");
        let defined: Vec<&str> = paths
            .values()
            .filter_map(|item| item.as_object())
            .flat_map(|item| item.values())
            .filter_map(|op| op["operationId"].as_str())
            .collect();
        for op in operation_ids {
            assert!(
                defined.contains(&op),
                "{op} is not an operation: {defined:?}"
            );
        }
    }
}
