"""Study workbench for multimodal foundation models."""
