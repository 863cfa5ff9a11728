"""One exception family, so the pytest layer can turn any of them into a one-line usage error."""


class HubkitError(Exception):
    """Base class: the message is one line that names the input and the fix."""


class CheckpointError(HubkitError):
    """A --model/--base-model path cannot be loaded as asked."""


class PromptSetError(HubkitError):
    """A prompt folder or file is missing, malformed or an unfetched Git-LFS pointer."""


class ConfigError(HubkitError):
    """A bad option, profile or budget value."""


class JudgeError(HubkitError):
    """A judge cannot run or cannot see the concept it is asked about."""


class StoreError(HubkitError):
    """The image store cannot be written (a full disk, a lost mount): what was stored before is kept."""


class NotApplicable(HubkitError):
    """This measurement does not apply to this run (no reference statistics, no such prompt file...).

    The pytest layer reports it as a skip with this message as the reason, never as a pass.
    """


class RegistryError(ConfigError):
    """An unknown name, or a registered entry (judge, attack, format...) that cannot be loaded."""
