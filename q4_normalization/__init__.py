"""q4_normalization"""
