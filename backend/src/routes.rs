//! Small routes: root, health, version, `/api`, `/admin`, and the JSON fallbacks.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use jiff::Timestamp;
use serde_json::{Value, json};

use crate::auth::{AdminUser, AuthUser};
use crate::db;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

pub const VERSION: &str = env!("CARGO_PKG_VERSION");
pub const API_MODULES: &[&str] = &["auth", "blobs"];
pub const ADMIN_MODULES: &[&str] = &["users", "db"];

pub async fn root() -> &'static str {
    "Ignition API"
}

pub async fn health(State(state): State<AppState>) -> Response {
    let timestamp = Timestamp::now().to_string();
    match db::schema_version(&state.pool).await {
        Ok(schema_version) => Json(json!({
            "status": "healthy",
            "version": VERSION,
            "timestamp": timestamp,
            "schema_version": schema_version,
        }))
        .into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "health check: database unavailable");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({
                    "status": "unhealthy",
                    "version": VERSION,
                    "timestamp": timestamp,
                    "schema_version": null,
                    "error": "database_unavailable",
                    "message": e,
                })),
            )
                .into_response()
        }
    }
}

pub async fn version(State(state): State<AppState>) -> Json<Value> {
    let applied = db::schema_version(&state.pool).await.ok().flatten();
    Json(json!({
        "name": env!("CARGO_PKG_NAME"),
        "version": VERSION,
        "api_version": VERSION,
        "schema_version": applied,
        "embedded_schema_version": db::latest_embedded_version(),
    }))
}

pub async fn api_index(AuthUser(_user): AuthUser) -> Json<Value> {
    Json(json!({ "version": VERSION, "modules": API_MODULES }))
}

pub async fn admin_index(AdminUser(_user): AdminUser) -> Json<Value> {
    Json(json!({
        "version": VERSION,
        "modules": ADMIN_MODULES,
        "role_required": "admin",
    }))
}

pub async fn admin_db_health(
    State(state): State<AppState>,
    AdminUser(_user): AdminUser,
) -> ApiResult<Json<Value>> {
    let client = state.pool.get().await?;
    let names: Vec<String> = client
        .query(
            "SELECT table_name::text FROM information_schema.tables \
             WHERE table_schema = 'public' AND table_type = 'BASE TABLE' ORDER BY table_name",
            &[],
        )
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let mut tables = Vec::with_capacity(names.len());
    for name in names {
        // Exact counts: the schema is a handful of small tables, and planner estimates
        // (`pg_class.reltuples`) read -1 or 0 until the first ANALYZE.
        let sql = format!("SELECT count(*) FROM public.{}", quote_ident(&name));
        let row_count: i64 = client.query_one(&sql, &[]).await?.get(0);
        tables.push(json!({ "name": name, "row_count": row_count }));
    }
    let size = client
        .query_one(
            "SELECT pg_database_size(current_database()), \
             pg_size_pretty(pg_database_size(current_database()))",
            &[],
        )
        .await?;
    Ok(Json(json!({
        "status": "healthy",
        "tables": tables,
        "total_size_estimate": size.get::<_, String>(1),
        "total_size_bytes": size.get::<_, i64>(0),
    })))
}

/// A Postgres identifier in double quotes, inner quotes doubled.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

pub async fn admin_users(
    State(state): State<AppState>,
    AdminUser(_user): AdminUser,
) -> ApiResult<Json<Value>> {
    let client = state.pool.get().await?;
    let rows = client
        .query(
            "SELECT u.id, u.email, u.name, u.role, u.approved, u.age_verified, u.tos_accepted, \
             u.created_at, \
             COALESCE((SELECT array_agg(r.role ORDER BY r.role) FROM user_roles r \
                       WHERE r.user_id = u.id), '{}') \
             FROM users u ORDER BY u.created_at, u.email LIMIT 1000",
            &[],
        )
        .await?;
    let users: Vec<Value> = rows
        .iter()
        .map(|r| {
            json!({
                "id": r.get::<_, uuid::Uuid>(0),
                "email": r.get::<_, String>(1),
                "name": r.get::<_, Option<String>>(2),
                "role": r.get::<_, String>(3),
                "approved": r.get::<_, bool>(4),
                "age_verified": r.get::<_, bool>(5),
                "tos_accepted": r.get::<_, bool>(6),
                "created_at": r.get::<_, Timestamp>(7),
                "roles": r.get::<_, Vec<String>>(8),
            })
        })
        .collect();
    Ok(Json(json!({ "count": users.len(), "users": users })))
}

pub async fn not_found() -> ApiError {
    ApiError::not_found("no such route")
}

pub async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_quoted() {
        assert_eq!(quote_ident("users"), "\"users\"");
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
    }
}
