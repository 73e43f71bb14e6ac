"""The ``shop`` environment: a WebShop-like store generated offline from a seed."""

from .catalog import CATEGORIES, Catalog, Category, Goal, Product, build_catalog
from .env import ShopEnv
from .reward import RewardBreakdown, shop_reward
from .tasks import ShopTask, build_tasks

__all__ = [
    "CATEGORIES",
    "Catalog",
    "Category",
    "Goal",
    "Product",
    "RewardBreakdown",
    "ShopEnv",
    "ShopTask",
    "build_catalog",
    "build_tasks",
    "shop_reward",
]
