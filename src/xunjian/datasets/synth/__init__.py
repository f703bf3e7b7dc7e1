"""The synthetic test range: a seeded digital twin of a city patch with ground truth in metres.

Generate a world, plan a drone survey or a patrol-vehicle run, render it through the same
camera model the pipeline inverts, and get JPEGs with DJI metadata plus exact truth::

    world = World.generate(7)
    plan = plan_survey(world, cam=CAMERAS["small"], height_m=30)
    truth = render_flight(world, plan, Path("out"), seed=7)

See docs/test-range.md for the world, the cameras, the output layout and the truth format.
Modules: world/layout/placement (the vector world), shapes/sprites/textures/roads/paint/
ground (how it looks, as a tile pyramid), view/solids/render/effects (one frame), truth,
plans/noise/gpx/flight (whole flights), export_yolo, contact.

May import: numpy, OpenCV, PyYAML, the standard library, ``xunjian.core``,
``xunjian.datasets.flightgen``. Nothing in ``core`` or ``inspect`` imports this package.
"""

from xunjian.datasets.synth.contact import contact_sheet
from xunjian.datasets.synth.effects import NO_EFFECTS, Effects
from xunjian.datasets.synth.export_yolo import YoloExport, export_yolo
from xunjian.datasets.synth.flight import (
    FlightTruth,
    FrameTruth,
    make_small_flight,
    make_vehicle_run,
    render_flight,
    survey_area,
)
from xunjian.datasets.synth.noise import EXACT, RTK, PoseNoise
from xunjian.datasets.synth.plans import (
    CAMERAS,
    CameraModel,
    ShotPlan,
    camera_preset,
    plan_from_poses,
    plan_survey,
    plan_vehicle_run,
)
from xunjian.datasets.synth.render import Renderer
from xunjian.datasets.synth.truth import VisibleTarget, frame_truth
from xunjian.datasets.synth.world import Area, Building, Changes, Road, Route, Target, Tree, World

__all__ = [
    "CAMERAS",
    "EXACT",
    "NO_EFFECTS",
    "RTK",
    "Area",
    "Building",
    "CameraModel",
    "Changes",
    "Effects",
    "FlightTruth",
    "FrameTruth",
    "PoseNoise",
    "Renderer",
    "Road",
    "Route",
    "ShotPlan",
    "Target",
    "Tree",
    "VisibleTarget",
    "World",
    "YoloExport",
    "camera_preset",
    "contact_sheet",
    "export_yolo",
    "frame_truth",
    "make_small_flight",
    "make_vehicle_run",
    "plan_from_poses",
    "plan_survey",
    "plan_vehicle_run",
    "render_flight",
    "survey_area",
]
