"""q5_ner_crf"""
