"""mutatenn: mutation testing for DNN compilers, as first-class TVM passes.

The Python API in one place: load a model, pick mutation operators, build mutants for a target
with the mutation passes slotted into TVM's pipeline, and run them on images; or run a whole
campaign (`run_campaign`) and read its results (`open_campaign`, `CampaignResult`).
"""

from .artifact import Artifact, Predictions, load_artifact
from .build import build
from .campaign import CampaignResult, open_campaign, run_campaign
from .errors import (BuildError, ConfigError, ImageLoadError, MissingDependencyError,
                     ModelLoadError, MutateNNError, MutateNNWarning, NativeLibraryError,
                     OperatorError, ReferenceUnavailableError, TargetError)
from .images import IMAGE_EXTENSIONS, Image, ImageList, Preprocess, default_images, load_images
from .model import Model, load_model
from .mutation import KERNEL_PHASES, MutationPass, MutationReport, find_sites, mutation
from .registry import CATEGORIES, OperatorSpec, get_operator, operators
from .selection import Sample, Site
from .targets import TargetProfile, get_profile, list_profiles
from .version import __version__

__all__ = [
    "Artifact", "BuildError", "CATEGORIES", "CampaignResult", "ConfigError",
    "IMAGE_EXTENSIONS", "Image", "ImageList", "ImageLoadError", "KERNEL_PHASES",
    "MissingDependencyError", "Model", "ModelLoadError", "MutateNNError", "MutateNNWarning",
    "MutationPass", "MutationReport", "NativeLibraryError", "OperatorError", "OperatorSpec",
    "Predictions", "Preprocess", "ReferenceUnavailableError",
    "Sample", "Site", "TargetError", "TargetProfile", "build", "default_images",
    "find_sites", "get_operator", "get_profile", "list_profiles", "load_artifact",
    "load_images", "load_model", "mutation", "open_campaign", "operators", "run_campaign",
    "__version__",
]
