//! Adding and editing a client: every field a stylist keeps, inline errors naming the
//! field, the consent box, and optimistic concurrency (an edit based on an old version is
//! refused with the newer values shown). Plain forms underneath, so both work without
//! JavaScript.

// A server function takes one argument per form field, and this form has many.
#![allow(clippy::too_many_arguments)]

use crate::error::AppError;
use crate::form::{FormAction, PostForm};
use crate::routes::{FormStatus, LoadError, action_error, field_error, invalid};
use domain::profile::{BudgetBand, Style};
use domain::views::Stylist;
use domain::{ClientEdit, ClientStatus};
use leptos::prelude::*;
use leptos_router::hooks::use_params_map;

#[server]
pub async fn list_stylists() -> Result<Vec<Stylist>, AppError> {
    let (service, user) = crate::service::service_for_user()?;
    Ok(service.list_stylists(&user).await?)
}

/// The edit form's starting point: the client's fields and the version they are from.
#[server]
pub async fn load_client_form(id: String) -> Result<(ClientEdit, u64), AppError> {
    let (service, user) = crate::service::service_for_user()?;
    let detail = service
        .client_detail(&user, domain::ClientId::new(id))
        .await?;
    Ok((ClientEdit::of(&detail.client), detail.client.version))
}

#[cfg(feature = "ssr")]
fn edit_from_form(
    name: String,
    email: String,
    stylist_id: String,
    status: String,
    email_opt_in: Option<String>,
    styles: Vec<String>,
    budget: String,
    style_notes: String,
    sizes: [String; 4],
) -> ClientEdit {
    let size = |s: String| Some(s.trim().to_owned()).filter(|s| !s.is_empty());
    let [top, bottom, dress, shoe] = sizes;
    ClientEdit {
        name,
        email,
        stylist_id,
        status,
        email_opt_in: email_opt_in.is_some(),
        styles,
        sizes: domain::profile::Sizes {
            top: size(top),
            bottom: size(bottom),
            dress: size(dress),
            shoe: size(shoe),
        },
        budget,
        style_notes,
    }
}

/// Adds a client, then opens their page.
#[server]
pub async fn create_client(
    name: String,
    email: String,
    stylist_id: String,
    #[server(default)] email_opt_in: Option<String>,
    #[server(default)] styles: Vec<String>,
    #[server(default)] budget: String,
    #[server(default)] style_notes: String,
    #[server(default)] size_top: String,
    #[server(default)] size_bottom: String,
    #[server(default)] size_dress: String,
    #[server(default)] size_shoe: String,
) -> Result<(), AppError> {
    let (service, user) = crate::service::service_for_user()?;
    let edit = edit_from_form(
        name,
        email,
        stylist_id,
        "active".into(),
        email_opt_in,
        styles,
        budget,
        style_notes,
        [size_top, size_bottom, size_dress, size_shoe],
    );
    let input = domain::ClientInput {
        name: edit.name.clone(),
        email: edit.email.clone(),
        stylist_id: edit.stylist_id.clone(),
        status: None,
        profile: domain::ProfileInput {
            email_opt_in: edit.email_opt_in,
            styles: edit.styles,
            sizes: edit.sizes,
            budget: Some(edit.budget).filter(|b| !b.is_empty()),
            style_notes: edit.style_notes,
            ..domain::ProfileInput::default()
        },
    };
    let client = service.create_client(&user, input).await?;
    leptos_axum::redirect(&format!("/clients/{}?added=1", client.id));
    Ok(())
}

/// Saves the edit form if the client is still at `version`, then opens their page.
#[server]
pub async fn update_client(
    id: String,
    version: u64,
    name: String,
    email: String,
    stylist_id: String,
    status: String,
    #[server(default)] email_opt_in: Option<String>,
    #[server(default)] styles: Vec<String>,
    #[server(default)] budget: String,
    #[server(default)] style_notes: String,
    #[server(default)] size_top: String,
    #[server(default)] size_bottom: String,
    #[server(default)] size_dress: String,
    #[server(default)] size_shoe: String,
) -> Result<(), AppError> {
    let (service, user) = crate::service::service_for_user()?;
    let edit = edit_from_form(
        name,
        email,
        stylist_id,
        status,
        email_opt_in,
        styles,
        budget,
        style_notes,
        [size_top, size_bottom, size_dress, size_shoe],
    );
    let client = service
        .update_client(&user, domain::ClientId::new(id), version, edit)
        .await?;
    leptos_axum::redirect(&format!("/clients/{}?saved=1", client.id));
    Ok(())
}

/// How each field is named on screen.
fn label(field: &str) -> &'static str {
    match field {
        "name" => "Name",
        "email" => "Email",
        "stylist_id" => "Stylist",
        "status" => "Status",
        "budget" => "Budget",
        "style_notes" => "Style notes",
        _ => "Field",
    }
}

/// The fields of both forms, filled from `values`.
#[component]
fn ClientFields(
    values: ClientEdit,
    stylists: Vec<Stylist>,
    error: Signal<Option<AppError>>,
    show_status: bool,
) -> impl IntoView {
    let selected_stylist = values.stylist_id.clone();
    let text_field = move |field: &'static str,
                           id: &'static str,
                           kind: &'static str,
                           value: String,
                           autocomplete: &'static str| {
        view! {
            <div class="field">
                <label for=id>{label(field)}</label>
                <input id=id name=field type=kind value=value autocomplete=autocomplete maxlength="200"
                    aria-invalid=invalid(error, field) aria-describedby=format!("{field}-error")/>
                {field_error(error, field, label(field))}
            </div>
        }
    };
    let styles_error = move || {
        error
            .get()
            .and_then(|e| match e {
                AppError::Invalid(errors) => errors
                    .0
                    .iter()
                    .find(|f| f.field.starts_with("styles") || f.field.starts_with("sizes"))
                    .map(|f| f.message.clone()),
                _ => None,
            })
            .map(|m| view! { <p class="field-error" role="alert">{m}</p> })
    };
    let size_field = |name: &'static str, text: &'static str, value: Option<String>| {
        let id = format!("client-{name}");
        view! {
            <div class="field small">
                <label for=id.clone()>{text}</label>
                <input id=id name=name type="text" maxlength="12" value=value.unwrap_or_default()/>
            </div>
        }
    };
    view! {
        {text_field("name", "client-name", "text", values.name.clone(), "off")}
        {text_field("email", "client-email", "email", values.email.clone(), "off")}
        <div class="field">
            <label for="client-stylist">"Stylist"</label>
            <select id="client-stylist" name="stylist_id" aria-invalid=invalid(error, "stylist_id") aria-describedby="stylist_id-error">
                {stylists.into_iter().map(|s| {
                    let selected = s.id.as_str() == selected_stylist;
                    view! { <option value=s.id.as_str().to_owned() selected=selected>{s.name}</option> }
                }).collect_view()}
            </select>
            {field_error(error, "stylist_id", "Stylist")}
        </div>
        {show_status.then(|| {
            let current = values.status.clone();
            view! {
                <div class="field">
                    <label for="client-status">"Status"</label>
                    <select id="client-status" name="status">
                        {[ClientStatus::Active, ClientStatus::Paused, ClientStatus::Closed].into_iter().map(|s| {
                            let selected = s.as_str() == current;
                            view! { <option value=s.as_str() selected=selected>{crate::routes::clients::status_label(s)}</option> }
                        }).collect_view()}
                    </select>
                    {field_error(error, "status", "Status")}
                </div>
            }
        })}
        <div class="field checkbox">
            <input id="client-opt-in" name="email_opt_in" type="checkbox" value="yes" checked=values.email_opt_in/>
            <label for="client-opt-in">"Agreed to receive emails"</label>
        </div>
        <fieldset class="styles">
            <legend>"Styles they like"</legend>
            {Style::ALL.into_iter().enumerate().map(|(i, style)| {
                let checked = values.styles.iter().any(|s| s == style.as_str());
                let id = format!("style-{}", style.as_str());
                view! {
                    <span class="chip">
                        <input id=id.clone() type="checkbox" name=format!("styles[{i}]") value=style.as_str() checked=checked/>
                        <label for=id>{style.as_str()}</label>
                    </span>
                }
            }).collect_view()}
        </fieldset>
        {styles_error}
        <fieldset class="sizes">
            <legend>"Sizes"</legend>
            {size_field("size_top", "Top", values.sizes.top.clone())}
            {size_field("size_bottom", "Bottom", values.sizes.bottom.clone())}
            {size_field("size_dress", "Dress", values.sizes.dress.clone())}
            {size_field("size_shoe", "Shoe", values.sizes.shoe.clone())}
        </fieldset>
        <div class="field">
            <label for="client-budget">"Budget per item"</label>
            <select id="client-budget" name="budget">
                {BudgetBand::ALL.into_iter().map(|b| {
                    let selected = b.as_str() == values.budget;
                    view! { <option value=b.as_str() selected=selected>{budget_label(b)}</option> }
                }).collect_view()}
            </select>
            {field_error(error, "budget", "Budget")}
        </div>
        <div class="field">
            <label for="client-notes">"Style notes"</label>
            <textarea id="client-notes" name="style_notes" rows="3" maxlength="2000" aria-describedby="style_notes-error">{values.style_notes.clone()}</textarea>
            {field_error(error, "style_notes", "Style notes")}
        </div>
    }
}

fn budget_label(band: BudgetBand) -> &'static str {
    match band {
        BudgetBand::Under50 => "Under $50",
        BudgetBand::From50To100 => "$50–100",
        BudgetBand::From100To200 => "$100–200",
        BudgetBand::Over200 => "Over $200",
    }
}

/// `/clients/new`.
#[component]
pub fn NewClientPage() -> impl IntoView {
    let stylists = Resource::new(|| (), |_| list_stylists());
    view! {
        <Suspense fallback=|| view! { <section class="panel"><p>"Loading…"</p></section> }>
            {move || Suspend::new(async move {
                match stylists.await {
                    Ok(stylists) => view! { <NewClientForm stylists/> }.into_any(),
                    Err(error) => view! { <LoadError error/> }.into_any(),
                }
            })}
        </Suspense>
    }
}

/// The new-client form: an island, so a refused value is named in place and nothing typed
/// is lost; without JavaScript it posts and the server names the field.
#[island]
fn NewClientForm(stylists: Vec<Stylist>) -> impl IntoView {
    let create = FormAction::new::<CreateClient>();
    let error = action_error(create);
    let status = Signal::derive(move || error.get().map(|e| e.to_string()));
    view! {
        <section class="panel">
            <h1>"Add a client"</h1>
            <PostForm action=create attr:class="client-form" attr:novalidate=true>
                <ClientFields values=ClientEdit { budget: BudgetBand::default().as_str().into(), ..ClientEdit::default() } stylists error show_status=false/>
                <div class="actions">
                    <button type="submit" disabled=move || create.pending().get()>"Add client"</button>
                    <a href="/">"Cancel"</a>
                </div>
            </PostForm>
            <FormStatus message=status/>
        </section>
    }
}

/// `/clients/:id/edit`.
#[component]
pub fn EditClientPage() -> impl IntoView {
    let params = use_params_map();
    let id = move || params.read().get("id").unwrap_or_default();
    let loaded = Resource::new(id, load_client_form);
    let stylists = Resource::new(|| (), |_| list_stylists());
    view! {
        <section class="panel">
            <h1>"Edit client"</h1>
            <Suspense fallback=|| view! { <p>"Loading…"</p> }>
                {move || Suspend::new(async move {
                    match (loaded.await, stylists.await) {
                        (Ok((values, version)), Ok(stylists)) => view! { <EditForm id=id() values version stylists/> }.into_any(),
                        (Err(error), _) | (_, Err(error)) => view! { <LoadError error/> }.into_any(),
                    }
                })}
            </Suspense>
        </section>
    }
}

/// The edit form: an island, like the new-client form.
#[island]
fn EditForm(id: String, values: ClientEdit, version: u64, stylists: Vec<Stylist>) -> impl IntoView {
    let stylists = StoredValue::new(stylists);
    let save = FormAction::new::<UpdateClient>();
    let error = action_error(save);
    // After a conflict, the form shows the newer values and version to edit again.
    let shown = Memo::new(move |_| match error.get() {
        Some(AppError::Conflict { current, version }) => (*current, version),
        _ => (values.clone(), version),
    });
    let conflict = move || matches!(error.get(), Some(AppError::Conflict { .. }));
    let status = Signal::derive(move || error.get().map(|e| e.to_string()));
    let back = format!("/clients/{id}");
    let id = StoredValue::new(id);
    view! {
        {move || conflict().then(|| view! {
            <p class="conflict" role="alert" id="conflict">"Someone else saved this client while you were editing. The form now shows their version; make your change again and save."</p>
        })}
        // Keyed on the version, so a newer version builds fresh fields (with the newer
        // values) instead of patching the ones the stylist typed into.
        <For each=move || std::iter::once(shown.get()) key=|(_, version)| *version let((values, version))>
            <PostForm action=save attr:class="client-form" attr:novalidate=true>
                <input type="hidden" name="id" value=id.get_value()/>
                <input type="hidden" name="version" value=version.to_string()/>
                <ClientFields values stylists=stylists.get_value() error show_status=true/>
                <div class="actions">
                    <button type="submit" disabled=move || save.pending().get()>"Save"</button>
                </div>
            </PostForm>
        </For>
        <a href=back>"Back to the client"</a>
        <FormStatus message=status/>
    }
}
