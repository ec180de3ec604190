"""Cost model, device catalog, roofline bounds and plots, and the papers' own figures."""
