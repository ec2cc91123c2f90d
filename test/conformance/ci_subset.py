"""The tests of Snakemake's suite that CI runs every way (test_conformance.py):
checkpoints, directories, groups, temp and protected files, scripts, run: blocks,
params, wildcard constraints, pipes, shadow rules, modules, config and resources."""

SUBSET = [
    # checkpoints
    "test_checkpoints", "test_checkpoint_allowed_rules",
    # directories
    "test_directory2",
    # groups
    "test_group_jobs",
    # temp and protected
    "test_temp", "test_temp_and_all_input", "test_protected_symlink_output",
    # scripts, run:, shell
    "test_script_import_snakemake_obj", "test_run_namedlist", "test_shell",
    # params
    "test_params", "test_params_empty_inherit",
    # wildcards and their constraints
    "test_module_wildcard_constraints", "test_same_wildcard",
    # pipes
    "test_pipes2", "test_pipes_multiple",
    # shadow rules
    "test_shadow_copy", "test_shadowed_log",
    # config, resources, modules, misc
    "test_config", "test_multiext", "test_localrule", "test_unpack_dict", "test01",
    # what a pod holds: the working directory's files outside git, resources from input sizes
    "test_local_import", "test_source_path_parent", "test_inferred_resources",
    "test_issue823_1",
    # Snakemake's own defects with a default storage: names of local copies, expand() in
    # a module, a checkpoint's copy mapped again, a rule's pathvars, ensure()
    "test_issue1284", "test_modules_name", "test_github_issue988", "test_pathvars",
    "test_ensure_success",
]  # fmt: skip
# Also on the cluster with Azure Blob (Azurite).
AZURE = ["test_checkpoints", "test_group_jobs", "test_temp", "test_script_import_snakemake_obj"]
# In the full suite, not in CI (each repeats a kind the subset has, and costs the most
# time of its kind; CI's budget is 45 minutes for everything): test_checkpoints_dir,
# test_checkpoints_many, test_module_checkpoint, test_group_temp, test_temp_expand,
# test_long_shell, test_format_params, test_wildcard_keyword, test_shadow,
# test_update_config, test_default_resources.
