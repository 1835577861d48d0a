raise RuntimeError("the deploy forgot a setting")
