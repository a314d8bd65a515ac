"""Models: every model this user can choose, with its card and where it came from. The user's own models
can be renamed and deleted (shipped and published ones are protected); any can be made the default, and a
finished training run can be registered under a name here. On a server with accounts, its administrators
publish their own models for everyone here, and withdraw them."""

from __future__ import annotations

import streamlit as st

from fer import accounts
from fer.errors import FerError
from fer.formatting import escape_markdown, file_size, local_time, percent
from fer.model import registry
from fer.model.cards import lineage_lines
from pages.common import MODEL_KEY, current_user, use_app_shell

NOTICE_KEY = "models_notice"  # ("success" | "error", sentence) of the last action, shown once.
SHELF_WORDS = {"shipped": "shipped with FER Studio", "published": "published for everyone", "yours": "yours"}


def act(action, *args, done: str, then=None) -> None:
    """Run a registry action from a button's callback; remember its outcome in words for the next run."""
    try:
        action(*args)
    except FerError as error:
        st.session_state[NOTICE_KEY] = ("error", str(error))
        return
    if then is not None:
        then()
    st.session_state[NOTICE_KEY] = ("success", done)


def rename(name: str, key: str, user: str | None) -> None:
    new_name = (st.session_state.get(key) or "").strip()

    def follow() -> None:  # The active model was renamed: keep it active under its new name.
        if st.session_state.get(MODEL_KEY) == name:
            st.session_state[MODEL_KEY] = new_name

    act(registry.rename_model, name, new_name, user, done=f"Renamed {name} to {new_name}.", then=follow)


def delete(name: str, user: str | None) -> None:
    def forget() -> None:  # Deleted while active: the pages fall back to the default model.
        if st.session_state.get(MODEL_KEY) == name:
            del st.session_state[MODEL_KEY]

    act(registry.delete_model, name, user, done=f"Deleted {name} and its files.", then=forget)


def register(path, key: str, user: str | None) -> None:
    name = (st.session_state.get(key) or "").strip()
    act(registry.register_model, path, name, user,
        done=f"Registered {name}: choose it in the sidebar, on any page.")


def accuracy(card) -> str:
    validation = card.metrics.get("validation") if isinstance(card.metrics, dict) else None
    value = validation.get("accuracy") if isinstance(validation, dict) else None
    return f"validation accuracy {percent(value)}" if isinstance(value, (int, float)) else "validation accuracy –"


def show_model(model, default_name: str | None, user: str | None) -> None:
    card = model.card
    with st.container(border=True, key=f"model-{model.name}"):
        title, badges = st.columns([3, 2], vertical_alignment="center")
        title.markdown(f"**{escape_markdown(model.name)}** · {SHELF_WORDS.get(model.shelf, model.shelf)}")
        if model.name == default_name:
            badges.badge("default", icon=":material/star:", color="violet")
        size = model.path.stat().st_size if model.path.exists() else 0
        st.caption(" · ".join([f"preset {card.preset or '–'}", accuracy(card), f"created {local_time(card.created)}",
                               f"{file_size(size)} (.keras)"]))
        story = lineage_lines(card) + card.facts()
        if story:  # One block, a line each: where it came from, then how it was made.
            st.caption("  \n".join(escape_markdown(line) for line in story))
        with st.expander("Model card"):
            st.json({key: value for key, value in card.to_dict().items() if key != "history"}, expanded=False)
        left, middle, right = st.columns([3, 1.2, 1.2], vertical_alignment="bottom")
        if model.name != default_name:
            middle.button("Make default", key=f"default-{model.name}", icon=":material/star:", width="stretch",
                          on_click=act, args=(registry.set_default_model, model.name, user),
                          kwargs={"done": f"{model.name} is now the model every page starts with."})
        publisher = accounts.offers_publishing(user)
        if model.shelf == "published" and publisher:
            left.caption("Published for everyone: withdraw it to rename or delete it.")
            right.button("Withdraw", key=f"withdraw-{model.name}", icon=":material/unpublished:", width="stretch",
                         on_click=act, args=(registry.withdraw_model, model.name, user),
                         kwargs={"done": f"Withdrew {model.name}: it is yours again, and nobody else sees it."})
            return
        if model.shelf != "yours":
            left.caption("Protected: shipped and published models cannot be renamed or deleted.")
            return
        if publisher:
            with middle.popover("Publish", icon=":material/public:", width="stretch"):
                st.markdown(f"Publish **{escape_markdown(model.name)}** for everyone? Every user can then choose "
                            "it, and nobody can rename or delete it until you withdraw it.")
                st.button("Publish for everyone", key=f"publish-{model.name}", type="primary", on_click=act,
                          args=(registry.publish_model, model.name, user),
                          kwargs={"done": f"Published {model.name}: every user can choose it now."})
        key = f"rename-{model.name}"
        left.text_input("New name", key=key, placeholder="letters, digits, '.', '_' or '-'")
        left.button("Rename", key=f"rename-button-{model.name}", icon=":material/edit:",
                    on_click=rename, args=(model.name, key, user))
        with right.popover("Delete", icon=":material/delete:", width="stretch"):
            st.markdown(f"Delete **{escape_markdown(model.name)}** and its exports? This cannot be undone.")
            st.button("Delete for good", key=f"delete-{model.name}", type="primary",
                      on_click=delete, args=(model.name, user))


def show_runs(user: str | None) -> None:
    runs = registry.list_runs(user)
    st.header("Finished training runs")
    if not runs:
        st.caption("No finished run yet. A run's best model can be registered here once it finishes.")
        return
    st.caption("A run's model is registered only when you give it a name (here, or on the Train page).")
    for run in runs:
        with st.container(border=True, key=f"run-{run.name}"):
            folder = run.name.removeprefix(registry.RUN_PREFIX)
            st.markdown(f"**{escape_markdown(folder)}** · {accuracy(run.card)} · "
                        f"finished {local_time(run.card.created)}")
            key = f"register-{folder}"
            left, right = st.columns([3, 1], vertical_alignment="bottom")
            left.text_input("Register as", key=key, placeholder="a name for this model")
            right.button("Register", key=f"register-button-{folder}", icon=":material/bookmark_add:",
                         width="stretch", on_click=register, args=(run.path, key, user))


use_app_shell()
st.title(":material/inventory_2: Models")
user = current_user()
notice = st.session_state.pop(NOTICE_KEY, None)
if notice:
    (st.success if notice[0] == "success" else st.error)(notice[1])
models = registry.list_models(user)
if not models:
    st.info("No model yet: train one on the **Train** page and register it.")
else:
    default_name = registry.default_model(user).name
    st.caption(f"{len(models)} model{'s' * (len(models) != 1)}; **{escape_markdown(default_name)}** is the "
               "default, the one every page starts with until you choose another in the sidebar.")
    for model in models:
        show_model(model, default_name, user)
show_runs(user)
