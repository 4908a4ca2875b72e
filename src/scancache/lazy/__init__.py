"""LazyModuleLoader: on-demand, background, preload and conditional module loading."""
