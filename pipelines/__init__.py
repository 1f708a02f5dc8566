"""isvc's framework: spec, plan, storage, data plane and the Ray Serve builder.

Heavy modules (Ray, the data plane) are imported where used, not here.
"""

from pipelines.errors import InvalidInput, ISVCError, ModelNotFound, ModelNotReady, SpecError
from pipelines.plan import ServicePlan

__all__ = ["ISVCError", "InvalidInput", "ModelNotFound", "ModelNotReady", "SpecError", "ServicePlan"]
