//! The clients page: search by name or email, filter by band and status, sort, and page
//! through the book. The filters are a plain GET form, so every view has its own address
//! and works without JavaScript.

use crate::error::AppError;
use crate::routes::{BandBadge, LoadError, format_instant, percent_encode};
use domain::views::{ClientPage, ClientSort};
use domain::{Band, ClientStatus};
use leptos::prelude::*;
use leptos_router::components::Form;
use leptos_router::hooks::use_query_map;
use serde::{Deserialize, Serialize};

/// The list's filters exactly as they appear in the address.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListFilters {
    pub search: String,
    pub band: String,
    pub status: String,
    pub sort: String,
    pub after: String,
}

#[server]
pub async fn list_clients(filters: ListFilters) -> Result<ClientPage, AppError> {
    let (service, user) = crate::service::service_for_user()?;
    let query = domain::views::ClientQuery::parse(
        &filters.search,
        &filters.band,
        &filters.status,
        &filters.sort,
        &filters.after,
        None,
    )
    .map_err(AppError::Invalid)?;
    Ok(service.list_clients(&user, query).await?)
}

/// The clients page.
#[component]
pub fn ClientsPage() -> impl IntoView {
    let query = use_query_map();
    let filters = Memo::new(move |_| {
        let q = query.read();
        let get = |key: &str| q.get(key).unwrap_or_default();
        ListFilters {
            search: get("search"),
            band: get("band"),
            status: get("status"),
            sort: get("sort"),
            after: get("after"),
        }
    });
    let page = Resource::new(move || filters.get(), list_clients);
    view! {
        <section class="panel">
            <div class="list-header">
                <h1>"Clients"</h1>
                <a class="button" href="/clients/new">"Add client"</a>
            </div>
            <Filters filters/>
            // Scores and new clients come in while the list is open (crate::live).
            <div id="clients-live" data-live="">
            <Transition fallback=|| view! { <p>"Loading clients…"</p> }>
                {move || Suspend::new(async move {
                    match page.await {
                        Ok(page) => view! { <ClientTable page filters=filters.get_untracked()/> }.into_any(),
                        Err(AppError::Invalid(errors)) => view! {
                            <p class="error" role="alert">{errors.0.iter().map(|e| format!("{}: {}", e.field, e.message)).collect::<Vec<_>>().join(" ")}</p>
                        }.into_any(),
                        Err(error) => view! { <LoadError error/> }.into_any(),
                    }
                })}
            </Transition>
            </div>
        </section>
    }
}

#[component]
fn Filters(filters: Memo<ListFilters>) -> impl IntoView {
    let current = filters.get_untracked();
    let option = |value: &'static str, label: &'static str, selected: &str| {
        let selected = selected == value;
        view! { <option value=value selected=selected>{label}</option> }
    };
    view! {
        <Form method="GET" action="" attr:class="filters" attr:role="search">
            <div class="field">
                <label for="filter-search">"Search"</label>
                <input id="filter-search" name="search" type="search" placeholder="Name or email" value=current.search.clone()/>
            </div>
            <div class="field">
                <label for="filter-band">"Band"</label>
                <select id="filter-band" name="band">
                    {option("", "Any band", &current.band)}
                    {Band::ALL.into_iter().map(|b| option(b.as_str(), b.label(), &current.band)).collect_view()}
                </select>
            </div>
            <div class="field">
                <label for="filter-status">"Status"</label>
                <select id="filter-status" name="status">
                    {option("", "Any status", &current.status)}
                    {[ClientStatus::Active, ClientStatus::Paused, ClientStatus::Closed].into_iter().map(|s| option(s.as_str(), status_label(s), &current.status)).collect_view()}
                </select>
            </div>
            <div class="field">
                <label for="filter-sort">"Sort"</label>
                <select id="filter-sort" name="sort">
                    {ClientSort::ALL.into_iter().map(|s| option(s.as_str(), s.label(), &current.sort)).collect_view()}
                </select>
            </div>
            <button type="submit">"Show"</button>
        </Form>
    }
}

pub(crate) fn status_label(status: ClientStatus) -> &'static str {
    match status {
        ClientStatus::Active => "Active",
        ClientStatus::Paused => "Paused",
        ClientStatus::Closed => "Closed",
    }
}

/// The address of the next page: the same filters, from the cursor.
fn next_href(filters: &ListFilters, cursor: &str) -> String {
    let pairs = [
        ("search", filters.search.as_str()),
        ("band", &filters.band),
        ("status", &filters.status),
        ("sort", &filters.sort),
        ("after", cursor),
    ];
    let query: Vec<String> = pairs
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| format!("{k}={}", percent_encode(v)))
        .collect();
    format!("/?{}", query.join("&"))
}

#[component]
fn ClientTable(page: ClientPage, filters: ListFilters) -> impl IntoView {
    if page.clients.is_empty() {
        let text = if filters.after.is_empty() {
            "No clients match these filters."
        } else {
            "No more clients."
        };
        return view! { <p class="empty">{text}</p> }.into_any();
    }
    let capped = page.search_capped.then(|| {
        let most = domain::views::ClientQuery::MAX_SEARCH_MATCHES;
        view! {
            <p class="hint" role="status" id="search-capped">
                {format!(
                    "More than {most} clients match \u{201c}{}\u{201d}; these are among the {most} added most recently. Type more to narrow the search.",
                    filters.search,
                )}
            </p>
        }
    });
    let next = page
        .next
        .as_deref()
        .map(|cursor| next_href(&filters, cursor));
    let first = (!filters.after.is_empty()).then(|| next_href(&filters, ""));
    view! {
        {capped}
        <table class="clients" tabindex="0">
            <thead>
                <tr><th scope="col">"Name"</th><th scope="col">"Email"</th><th scope="col">"Stylist"</th><th scope="col">"Score"</th><th scope="col">"Status"</th><th scope="col">"Last activity"</th></tr>
            </thead>
            <tbody>
                {page.clients.into_iter().map(|client| view! {
                    <tr data-client-id=client.id.as_str().to_owned()>
                        <td><a href=format!("/clients/{}", client.id)>{client.name}</a></td>
                        <td>{client.email}</td>
                        <td>{client.stylist_name}</td>
                        <td><BandBadge score=client.score band=client.band/></td>
                        <td>{status_label(client.status)}</td>
                        <td>{format_instant(client.last_activity_at)}</td>
                    </tr>
                }).collect_view()}
            </tbody>
        </table>
        <nav class="pager" aria-label="Pages">
            {first.map(|href| view! { <a href=href>"First page"</a> })}
            {next.map(|href| view! { <a href=href rel="next">"Next page"</a> })}
        </nav>
    }
    .into_any()
}
