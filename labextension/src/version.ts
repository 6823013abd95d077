/** The widget module's name and version: they must match `_model_module` / `_model_module_version` in Python. */
export const MODULE_NAME = 'jupyter-pipelines';
export const MODULE_VERSION = '0.1.0';
