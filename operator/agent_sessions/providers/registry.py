"""The one provider registry: `config.provider` → the provider that runs the session.

The reconciler never imports a provider: at startup, the operator's runtime
(`handlers.registration.OperatorRuntime`) registers a factory per provider type it offers (wiring
in the API client, the operator image, credentials), and the reconciler asks for
`get(config["provider"])`. A factory is called once, on first use; the
provider it returns is shared by every session of that type (providers hold clients, not
sessions).
"""

from __future__ import annotations

from collections.abc import Callable

from .base import Provider
from .errors import InvalidConfiguration
from .traced_provider import traced_provider

ProviderFactory = Callable[[], Provider]


class ProviderRegistry:
    """Provider factories by type name, and the providers they made."""

    def __init__(self) -> None:
        self._factories: dict[str, ProviderFactory] = {}
        self._providers: dict[str, Provider] = {}

    def register(self, type_name: str, factory: ProviderFactory, *, replace: bool = False) -> None:
        """Make `type_name` (`pod`, `http`, `tmux`, …) available. Registering a name twice is a
        wiring bug and raises ValueError, unless `replace` (tests, reconfiguration)."""
        if type_name in self._factories and not replace:
            raise ValueError(f"provider {type_name!r} is already registered")
        self._factories[type_name] = factory
        self._providers.pop(type_name, None)

    def get(self, type_name: str) -> Provider:
        """The provider for `type_name`. An unknown name is the session's configuration problem
        (a provider this operator does not run): `InvalidConfiguration`."""
        provider = self._providers.get(type_name)
        if provider is not None:
            return provider
        factory = self._factories.get(type_name)
        if factory is None:
            raise InvalidConfiguration([f"spec.provider: provider {type_name!r} is not available in this operator"])
        provider = self._providers[type_name] = traced_provider(factory(), type_name)  # spans while tracing is on
        return provider

    def types(self) -> tuple[str, ...]:
        """The registered type names, sorted."""
        return tuple(sorted(self._factories))

    def clear(self) -> None:
        self._factories.clear()
        self._providers.clear()
