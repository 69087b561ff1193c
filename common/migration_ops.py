"""A migration operation Django lacks: moving a model to another app while its table stays.

Django has no operation for this (ticket #24686). The usual workaround, ``CreateModel`` in the
new app and ``DeleteModel`` in the old one wrapped in ``SeparateDatabaseAndState``, repeats the
whole model definition in a second migration. ``ModelMove`` instead moves the model's state as
it stands, repoints every relation to it, and touches nothing in the database: the model keeps
its table (``Meta.db_table`` names it in the new app).
"""

from __future__ import annotations

from typing import Any

from django.db.migrations.operations.base import Operation
from django.db.migrations.state import ProjectState
from django.db.migrations.utils import get_references


class ModelMove(Operation):
    """Move model ``name`` from app ``from_app`` to the app of the migration that runs this."""

    reversible = True
    reduces_to_sql = True  # to nothing: sqlmigrate shows no statement

    def __init__(self, name: str, from_app: str) -> None:
        self.name = name
        self.from_app = from_app

    def deconstruct(self) -> tuple[str, list[Any], dict[str, Any]]:
        return (self.__class__.__qualname__, [], {"name": self.name, "from_app": self.from_app})

    def state_forwards(self, app_label: str, state: ProjectState) -> None:
        name_lower = self.name.lower()
        old_key = (self.from_app, name_lower)
        new_remote = f"{app_label}.{name_lower}"
        to_reload: set[tuple[str, str]] = set()
        # Repoint every relation to the model (its own included) before moving it.
        for model_state, field_name, field, reference in list(get_references(state, old_key)):
            changed = field.clone()
            # In migration state a relation names its models lazily, as "app.model" strings,
            # which the stubs' ForeignObjectRel (``model: type[Model]``) does not allow for.
            relation: Any = changed.remote_field
            if reference.to:
                relation.model = new_remote
            if reference.through:
                relation.through = new_remote
            model_state.fields[field_name] = changed
            to_reload.add((model_state.app_label, model_state.name_lower))
        moved = state.models[old_key].clone()
        moved.app_label = app_label
        moved.options.setdefault("db_table", f"{self.from_app}_{name_lower}")
        state.remove_model(*old_key)
        state.add_model(moved)
        # Relations to the moved model are recomputed from scratch when next needed.
        state._relations = None  # type: ignore[attr-defined]  # private cache, not in the stubs
        to_reload.discard(old_key)
        state.reload_models(list(to_reload), delay=True)

    def database_forwards(
        self, app_label: str, schema_editor: Any, from_state: Any, to_state: Any
    ) -> None:
        """Nothing: the table keeps its name."""

    def database_backwards(
        self, app_label: str, schema_editor: Any, from_state: Any, to_state: Any
    ) -> None:
        """Nothing: the table keeps its name."""

    def describe(self) -> str:
        return f"Move model {self.name} here from {self.from_app} (its table stays)"

    @property
    def migration_name_fragment(self) -> str:
        return f"move_{self.name.lower()}"

    def references_model(self, name: str, app_label: str) -> bool:
        return name.lower() == self.name.lower()
