"""FER Studio: explore a facial-expression dataset, train a CNN, evaluate it, read emotions."""

import streamlit as st

st.set_page_config(page_title="FER Studio", page_icon="🙂", layout="wide")

navigation = st.navigation([
    st.Page("pages/home.py", title="Home", icon="🏠", default=True),
    st.Page("pages/dataset.py", title="Dataset", icon="🗂️"),
    st.Page("pages/train.py", title="Train", icon="🏋️"),
    st.Page("pages/evaluate.py", title="Evaluate", icon="📊"),
    st.Page("pages/predict.py", title="Predict", icon="📷"),
])
navigation.run()
