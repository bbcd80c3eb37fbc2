"""Error types: every failure a user can cause is a `MutateNNError` with a one-line message.

The CLI prints the message and exits with code 2, so the classes exist to let Python callers
catch one kind of failure (a bad model file, an unknown operator) without string matching.
"""

import tvm_ffi


class MutateNNError(Exception):
    """Base class of every error mutatenn reports to a user."""


class ModelLoadError(MutateNNError):
    """A model file is missing, truncated, corrupt, of an unknown format, or not importable."""


class ImageLoadError(MutateNNError):
    """An image file is missing or cannot be decoded."""


class TargetError(MutateNNError):
    """An unknown target name, a malformed profile, or a target that cannot build or run here."""


class OperatorError(MutateNNError):
    """An unknown mutation operator, a bad parameter, or a bad site selection."""


class BuildError(MutateNNError):
    """TVM failed to build a (possibly mutated) module."""


class NativeLibraryError(MutateNNError, ImportError):
    """The C++ pass extension is missing or cannot be loaded."""


class ConfigError(MutateNNError):
    """A campaign configuration file is invalid."""


class MutateNNWarning(UserWarning):
    """Something a user should know that does not stop the work (a bad target profile that
    is not used, ...); the CLI prints each as one ``warning:`` line on stderr."""


class ReferenceUnavailableError(MutateNNError):
    """The model's reference runtime is not installed or cannot run the model; callers that
    can go on without the reference comparison catch this one."""


class MissingDependencyError(MutateNNError, ImportError):
    """An optional library a feature needs (pandas for `CampaignResult.to_pandas`) is not
    installed."""


class CampaignInterrupted(KeyboardInterrupt):
    """A campaign stopped by Ctrl-C. A `KeyboardInterrupt` still (so that whatever stops on
    Ctrl-C stops on it), whose message says how many results were saved and that rerunning
    resumes; the CLI prints it and exits with code 130."""


# Errors raised inside a pass cross TVM's FFI on their way out of `Sequential`/`tvm.compile`;
# registering each class by name makes them arrive as themselves, not as RuntimeError.
for _cls in (MutateNNError, ModelLoadError, ImageLoadError, TargetError, OperatorError,
             BuildError, ConfigError, ReferenceUnavailableError, MissingDependencyError):
    tvm_ffi.register_error(_cls.__name__, _cls)
