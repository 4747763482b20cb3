//! Dashboards: a project's named grids of widgets (any number, chart or
//! table of the other pages), with each widget's place and size on a
//! 12-column grid. Members read them; admins make, change and delete them.

use std::collections::HashSet;
use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sightline_store::Dashboard;

use crate::AppState;
use crate::audit;
use crate::auth::{ClientAddr, authenticate};
use crate::error::ApiError;

/// Columns of the grid.
pub const GRID_COLUMNS: u16 = 12;
/// Most widgets on one dashboard.
const MAX_WIDGETS: usize = 50;
/// Tallest widget, in rows.
const MAX_HEIGHT: u16 = 12;
/// Lowest row a widget may start on.
const MAX_ROW: u16 = 1000;
const MAX_ID_BYTES: usize = 64;
const MAX_TITLE_CHARS: usize = 100;

/// A widget and its place on the grid.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Widget {
    /// Unique within the dashboard: 1 to 64 of `A-Z a-z 0-9 _ -`.
    pub id: String,
    /// Shown above the widget instead of the view's own name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Column of the left edge, 0 to 11.
    pub x: u16,
    /// Row of the top edge.
    pub y: u16,
    /// Width in columns; `x + w` is at most 12.
    pub w: u16,
    /// Height in rows, 1 to 12.
    pub h: u16,
    pub view: WidgetView,
}

/// What a widget shows, over the dashboard's time range.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum WidgetView {
    /// One number.
    Number { metric: NumberMetric },
    /// A series over time.
    Chart { series: ChartSeries },
    /// A ranked table.
    Table { table: TableSource },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum NumberMetric {
    Visitors,
    Pageviews,
    Sessions,
    BounceRate,
    VisitDuration,
    CurrentVisitors,
    /// Error events in the range.
    Errors,
    LcpP75,
    InpP75,
    ClsP75,
    FcpP75,
    TtfbP75,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ChartSeries {
    Pageviews,
    Visitors,
    /// Error events per interval.
    Errors,
    /// Errors per page view.
    ErrorRate,
    /// Custom events per interval.
    Events,
    /// Page views per minute of the last 30 minutes, moved by the live feed.
    LivePageviews,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TableSource {
    Page,
    EntryPage,
    ExitPage,
    Referrer,
    Device,
    Browser,
    Os,
    Release,
    /// The most frequent error groups.
    ErrorGroups,
    /// Custom events per name.
    EventNames,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DashboardBody {
    pub name: String,
    #[serde(default)]
    pub widgets: Vec<Widget>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DashboardView {
    pub id: String,
    pub name: String,
    pub widgets: Vec<Widget>,
    pub created_by: String,
    pub created_at: i64,
    pub updated_by: String,
    pub updated_at: i64,
}

impl TryFrom<Dashboard> for DashboardView {
    type Error = ApiError;

    fn try_from(d: Dashboard) -> Result<Self, ApiError> {
        let widgets = serde_json::from_value(d.widgets).map_err(|e| {
            tracing::error!(dashboard = %d.id, error = %e, "stored widgets do not parse");
            ApiError::internal(format!("dashboard {} holds widgets this version cannot read", d.id))
        })?;
        Ok(DashboardView {
            id: d.id,
            name: d.name,
            widgets,
            created_by: d.created_by,
            created_at: d.created_at,
            updated_by: d.updated_by,
            updated_at: d.updated_at,
        })
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DashboardList {
    /// Oldest first.
    pub dashboards: Vec<DashboardView>,
}

/// Checks what serde cannot: sizes, places and unique ids. The error names
/// the field, as `widgets[2].w`.
fn check_widgets(widgets: &[Widget]) -> Result<(), ApiError> {
    if widgets.len() > MAX_WIDGETS {
        return Err(ApiError::bad_request("invalid_value", "widgets", format!("at most {MAX_WIDGETS} widgets")));
    }
    let mut ids = HashSet::new();
    for (i, w) in widgets.iter().enumerate() {
        let bad = |name: &str, message: String| {
            ApiError::bad_request("invalid_value", &format!("widgets[{i}].{name}"), message)
        };
        let id_ok = !w.id.is_empty()
            && w.id.len() <= MAX_ID_BYTES
            && w.id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if !id_ok {
            return Err(bad("id", format!("1 to {MAX_ID_BYTES} of A-Z a-z 0-9 _ -, got {:?}", w.id)));
        }
        if !ids.insert(w.id.as_str()) {
            return Err(bad("id", format!("{:?} is the id of an earlier widget", w.id)));
        }
        if w.title.as_ref().is_some_and(|t| t.chars().count() > MAX_TITLE_CHARS) {
            return Err(bad("title", format!("at most {MAX_TITLE_CHARS} characters")));
        }
        if w.w == 0 || w.w > GRID_COLUMNS {
            return Err(bad("w", format!("1 to {GRID_COLUMNS} columns, got {}", w.w)));
        }
        if w.x + w.w > GRID_COLUMNS {
            return Err(bad("x", format!("x + w is at most {GRID_COLUMNS}, got {} + {}", w.x, w.w)));
        }
        if w.h == 0 || w.h > MAX_HEIGHT {
            return Err(bad("h", format!("1 to {MAX_HEIGHT} rows, got {}", w.h)));
        }
        if w.y > MAX_ROW {
            return Err(bad("y", format!("at most {MAX_ROW}, got {}", w.y)));
        }
    }
    Ok(())
}

fn widgets_json(widgets: &[Widget]) -> Result<serde_json::Value, ApiError> {
    serde_json::to_value(widgets).map_err(|e| ApiError::internal(e.to_string()))
}

#[utoipa::path(get, path = "/api/v1/projects/{id}/dashboards", tag = "queries", params(("id" = String, Path)),
    responses((status = 200, body = DashboardList), (status = 403, body = crate::error::ErrorBody)),
    security(("bearer" = []), ("session" = [])))]
pub async fn list_dashboards(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Json<DashboardList>, ApiError> {
    authenticate(&state, &headers).await?.can_read(&id)?;
    let dashboards =
        state.store.dashboards(&id).await?.into_iter().map(DashboardView::try_from).collect::<Result<_, _>>()?;
    Ok(Json(DashboardList { dashboards }))
}

#[utoipa::path(get, path = "/api/v1/projects/{id}/dashboards/{dashboard_id}", tag = "queries",
    params(("id" = String, Path), ("dashboard_id" = String, Path)),
    responses((status = 200, body = DashboardView), (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)),
    security(("bearer" = []), ("session" = [])))]
pub async fn get_dashboard(
    State(state): State<Arc<AppState>>,
    Path((id, dashboard_id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Json<DashboardView>, ApiError> {
    authenticate(&state, &headers).await?.can_read(&id)?;
    let dashboard = state.store.dashboard(&id, &dashboard_id).await?.ok_or_else(|| missing(&id, &dashboard_id))?;
    Ok(Json(dashboard.try_into()?))
}

#[utoipa::path(post, path = "/api/v1/projects/{id}/dashboards", tag = "queries", params(("id" = String, Path)),
    request_body = DashboardBody,
    responses((status = 201, body = DashboardView), (status = 400, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody)),
    security(("bearer" = []), ("session" = [])))]
pub async fn create_dashboard(
    State(state): State<Arc<AppState>>,
    ClientAddr(source): ClientAddr,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Result<Json<DashboardBody>, JsonRejection>,
) -> Result<(StatusCode, Json<DashboardView>), ApiError> {
    let principal = authenticate(&state, &headers).await?;
    principal.can_admin(&id)?;
    let Json(body) = body?;
    check_widgets(&body.widgets)?;
    let made = state.store.create_dashboard(&id, &body.name, widgets_json(&body.widgets)?, &principal.actor()).await?;
    let details = json!({ "name": made.name, "widgets": body.widgets.len() });
    let object = format!("dashboard:{}", made.id);
    audit::record_by(&state, &principal, source, "dashboard_created", &object, Some(&id), details).await;
    Ok((StatusCode::CREATED, Json(made.try_into()?)))
}

#[utoipa::path(put, path = "/api/v1/projects/{id}/dashboards/{dashboard_id}", tag = "queries",
    params(("id" = String, Path), ("dashboard_id" = String, Path)),
    request_body = DashboardBody,
    responses((status = 200, body = DashboardView), (status = 400, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)),
    security(("bearer" = []), ("session" = [])))]
pub async fn update_dashboard(
    State(state): State<Arc<AppState>>,
    ClientAddr(source): ClientAddr,
    Path((id, dashboard_id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Result<Json<DashboardBody>, JsonRejection>,
) -> Result<Json<DashboardView>, ApiError> {
    let principal = authenticate(&state, &headers).await?;
    principal.can_admin(&id)?;
    let Json(body) = body?;
    check_widgets(&body.widgets)?;
    let widgets = widgets_json(&body.widgets)?;
    let changed = state
        .store
        .update_dashboard(&id, &dashboard_id, &body.name, widgets, &principal.actor())
        .await?
        .ok_or_else(|| missing(&id, &dashboard_id))?;
    let details = json!({ "name": changed.name, "widgets": body.widgets.len() });
    let object = format!("dashboard:{dashboard_id}");
    audit::record_by(&state, &principal, source, "dashboard_changed", &object, Some(&id), details).await;
    Ok(Json(changed.try_into()?))
}

#[utoipa::path(delete, path = "/api/v1/projects/{id}/dashboards/{dashboard_id}", tag = "queries",
    params(("id" = String, Path), ("dashboard_id" = String, Path)),
    responses((status = 204), (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)),
    security(("bearer" = []), ("session" = [])))]
pub async fn delete_dashboard(
    State(state): State<Arc<AppState>>,
    ClientAddr(source): ClientAddr,
    Path((id, dashboard_id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    let principal = authenticate(&state, &headers).await?;
    principal.can_admin(&id)?;
    if !state.store.delete_dashboard(&id, &dashboard_id).await? {
        return Err(missing(&id, &dashboard_id));
    }
    let object = format!("dashboard:{dashboard_id}");
    audit::record_by(&state, &principal, source, "dashboard_deleted", &object, Some(&id), json!({})).await;
    Ok(StatusCode::NO_CONTENT)
}

fn missing(project: &str, dashboard: &str) -> ApiError {
    ApiError::not_found(format!("no dashboard `{dashboard}` in project `{project}`"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn widget(id: &str, x: u16, w: u16, h: u16) -> Widget {
        Widget {
            id: id.into(),
            title: None,
            x,
            y: 0,
            w,
            h,
            view: WidgetView::Number { metric: NumberMetric::Visitors },
        }
    }

    #[test]
    fn widgets_parse_from_the_documented_shape_and_nothing_else() {
        let parsed: Widget = serde_json::from_value(json!({
            "id": "w1", "x": 0, "y": 2, "w": 6, "h": 3, "view": { "kind": "table", "table": "entry_page" }
        }))
        .unwrap();
        assert_eq!(parsed.view, WidgetView::Table { table: TableSource::EntryPage });
        for bad in [
            json!({ "id": "w", "x": 0, "y": 0, "w": 1, "h": 1, "view": { "kind": "pie", "metric": "visitors" } }),
            json!({ "id": "w", "x": 0, "y": 0, "w": 1, "h": 1, "view": { "kind": "number", "metric": "revenue" } }),
            json!({ "id": "w", "x": 0, "y": 0, "w": 1, "h": 1, "view": { "kind": "number", "metric": "visitors", "extra": 1 } }),
            json!({ "id": "w", "x": 0, "y": 0, "w": 1, "h": 1, "colour": "red", "view": { "kind": "chart", "series": "errors" } }),
            json!({ "id": "w", "x": -1, "y": 0, "w": 1, "h": 1, "view": { "kind": "chart", "series": "errors" } }),
        ] {
            assert!(serde_json::from_value::<Widget>(bad.clone()).is_err(), "{bad}");
        }
    }

    #[test]
    fn places_and_ids_are_checked_and_the_error_names_the_field() {
        check_widgets(&[widget("a", 0, 12, 1), widget("b", 6, 6, 12)]).unwrap();
        let cases = [
            (vec![widget("a", 0, 0, 1)], "widgets[0].w"),
            (vec![widget("a", 0, 13, 1)], "widgets[0].w"),
            (vec![widget("a", 0, 4, 1), widget("b", 9, 4, 1)], "widgets[1].x"),
            (vec![widget("a", 0, 4, 0)], "widgets[0].h"),
            (vec![widget("a", 0, 4, 13)], "widgets[0].h"),
            (vec![widget("a", 0, 4, 1), widget("a", 4, 4, 1)], "widgets[1].id"),
            (vec![widget("<b>", 0, 4, 1)], "widgets[0].id"),
            (vec![widget("", 0, 4, 1)], "widgets[0].id"),
            ((0..51).map(|i| widget(&format!("w{i}"), 0, 1, 1)).collect(), "widgets"),
        ];
        for (widgets, field) in cases {
            let e = check_widgets(&widgets).unwrap_err();
            assert_eq!((e.status, e.field.as_deref()), (StatusCode::BAD_REQUEST, Some(field)), "{}", e.message);
        }
        let mut low = widget("a", 0, 4, 1);
        low.y = MAX_ROW + 1;
        assert_eq!(check_widgets(&[low]).unwrap_err().field.as_deref(), Some("widgets[0].y"));
        let mut titled = widget("a", 0, 4, 1);
        titled.title = Some("t".repeat(MAX_TITLE_CHARS + 1));
        assert_eq!(check_widgets(&[titled]).unwrap_err().field.as_deref(), Some("widgets[0].title"));
    }
}
