from tests.guidelines.install import fictional

__all__ = ["fictional"]
