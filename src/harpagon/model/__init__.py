"""Hardware, profiles, applications and plans; their file formats; the latency, cost and validity model.

Everything here is pure data and arithmetic: no planning, no clocks, no I/O beyond reading
and writing the input and plan files.
"""

from harpagon.model.application import Application, Module
from harpagon.model.hardware import HardwareCatalog, HardwareType
from harpagon.model.latency import Dispatch
from harpagon.model.loading import (
    load_application,
    load_hardware,
    load_profiles,
    resolve_application,
    shipped_app_names,
    shipped_data_path,
)
from harpagon.model.plan import Group, ModulePlan, Plan, SharedMachine, SharedMember, load_plan
from harpagon.model.profiles import Profile, ProfileSet
from harpagon.model.validate import PlanCheck, make_group, make_module_plan, make_plan, validate_plan

__all__ = [
    "Application", "Dispatch", "Group", "HardwareCatalog", "HardwareType", "Module",
    "ModulePlan", "Plan", "PlanCheck", "Profile", "ProfileSet", "SharedMachine", "SharedMember",
    "load_application", "load_hardware", "load_plan", "load_profiles", "make_group",
    "make_module_plan", "make_plan", "resolve_application", "shipped_app_names",
    "shipped_data_path", "validate_plan",
]
