"""Loss landscapes of real models: a 2-D slice of parameter space around trained parameters.

Directions are filter-normalised random ones (Li et al., NeurIPS 2018) or the first two
principal components of the run's parameter trajectory; the grid is evaluated in batches
with torch.func.functional_call under torch.vmap. torch is imported by these modules, so
only `gradviz landscape` imports them.
"""
